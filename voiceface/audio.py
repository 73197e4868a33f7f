"""The audio front-end, defined once: training data (stage 1.2) and inference (stage 3, offline
and streaming) all compute features here, so the model always sees the same numbers.

Decode any container with PyAV (FFmpeg), downmix to mono, resample to 16 kHz with soxr (a
windowed-sinc resampler with proper anti-aliasing, streaming), then per 10 ms hop:

- an 80-bin log-mel spectrum of the last 25 ms (400 samples, Hann, zero-padded to a 512-point FFT,
  20 Hz - 8 kHz, Slaney mel scale, triangles of peak 1). Framing is *causal*: frame i covers the
  400 samples ending at sample (i + 1) * 160 and is stamped with that time, so it uses nothing
  after its own timestamp and a streaming front-end computes the very same frames. There are
  floor(n_samples / 160) frames; the first ones see zeros before the start.
- decibels against a fixed reference: a full-scale sine (amplitude 1) reads 0 dB in the bins it
  falls in; values are clipped to [-120, 10] dB (-120 dB is below 16-bit quantisation noise, so
  only digital silence meets it). Never against the file's own maximum. The model's inputs clip
  again (voiceface.dataset): at -80 dB in the fixed mode, at LEVEL_FLOOR_BELOW_DB under the
  recording's running level in the level mode, so that a quiet recording loses nothing.
- RMS of the same 400 samples in dBFS, and voice activity from it: above an adaptive threshold
  (a noise floor that follows quiet passages down at once and creeps up 3 dB/s, plus 12 dB, and
  never below a minimum: -55 dBFS, or 32 dB under the loudest recent sound when that is quieter
  than -23 dBFS, never below -80 dBFS), held for 100 ms after the level falls (hangover).

All of it runs chunk by chunk with state (`AudioFrontEnd.process`), and a whole file is just one
front-end fed block by block, so the two give bitwise identical frames.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .constants import FRAME_RATE, HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, WIN_LENGTH
from .errors import FormatError, InputError

MEL_FMIN = 20.0                 # Hz: below is rumble and DC, not speech
MEL_FMAX = SAMPLE_RATE / 2      # 8000 Hz: all a 16 kHz signal holds
DB_FLOOR = -120.0               # dB: what the features store; below 16-bit quantisation noise
DB_CEILING = 10.0
POWER_FLOOR = 1e-12             # -120 dB: avoids log(0) in digital silence
VAD_MIN_THRESHOLD_DB = -55.0    # dBFS: quieter is never speech in a recording of ordinary level ...
VAD_BELOW_PEAK_DB = 32.0        # ... but in a quiet one the minimum is this far under its loudest recent sound,
VAD_PEAK_DECAY_DB_PER_S = 1.0   # (that peak decaying this fast: a loud moment is forgotten in tens of seconds)
VAD_ABSOLUTE_MIN_DB = -80.0     # dBFS: and quieter than this is never speech at all
VAD_MARGIN_DB = 12.0            # speech stands this far above the running noise floor
VAD_FLOOR_RISE_DB_PER_S = 3.0   # the noise floor creeps up this fast in long loud stretches
VAD_FLOOR_START_DB = -70.0      # dBFS: noise floor assumed before any audio has been heard
VAD_FLOOR_MIN_DB = -100.0       # dBFS: ... and it never sinks below this (digital silence reads -120)
VAD_HANGOVER_S = 0.10           # speech is held this long after the level drops (gaps in words)
VAD_SWING_S = 0.5               # speech rises and falls within this long (syllables) ...
VAD_MIN_SWING_DB = 9.0          # ... by at least this much in its own band; stationary noise does not
VAD_BAND_HZ = (250.0, 4000.0)   # the band whose swing is measured: above hum and rumble, where voices are
LEVEL_NORM_SECONDS = 3.0        # time constant (of speech) of the causal running mean level
LEVEL_NORM_FRAMES = int(LEVEL_NORM_SECONDS * FRAME_RATE)   # the same in voiced frames: 300
LEVEL_NORM_START_DB = -45.0     # dB: the running mean's value before any audio (typical speech)
LEVEL_FLOOR_BELOW_DB = 41.0     # dB: level-mode inputs are clipped this far below the running broadband
#                                 level: where the old fixed -80 dB floor sat for the real clips' median
#                                 level (-39 dB), and it moves with the recording's gain (ARCHITECTURE.md)

AUDIO_FEATURES_FORMAT = "voiceface/audio_features"
AUDIO_FEATURES_FORMAT_VERSION = 1
AUDIO_FEATURES_FILENAME = "audio_features.npz"
DECODE_BLOCK_SECONDS = 10.0     # decoded audio is handed on in blocks of about this length


def front_end_config() -> dict:
    """Every constant that shapes the features. Stored in each NPZ and checkpoint; readers refuse
    files whose values differ."""
    return {"sample_rate": SAMPLE_RATE, "hop_length": HOP_LENGTH, "win_length": WIN_LENGTH,
            "n_fft": N_FFT, "n_mels": N_MELS, "frame_rate": FRAME_RATE, "window": "hann (periodic)",
            "framing": "causal: frame i covers samples [(i+1)*hop - win, (i+1)*hop), stamped (i+1)*hop",
            "mel_scale": "slaney, peak-1 triangles", "fmin": MEL_FMIN, "fmax": MEL_FMAX,
            "db_reference": "full-scale sine = 0 dB", "db_floor": DB_FLOOR, "db_ceiling": DB_CEILING,
            "power_floor": POWER_FLOOR, "resampler": "soxr HQ", "downmix": "mean of channels",
            "vad_min_threshold_db": VAD_MIN_THRESHOLD_DB, "vad_below_peak_db": VAD_BELOW_PEAK_DB,
            "vad_peak_decay_db_per_s": VAD_PEAK_DECAY_DB_PER_S, "vad_absolute_min_db": VAD_ABSOLUTE_MIN_DB,
            "vad_margin_db": VAD_MARGIN_DB,
            "vad_floor_rise_db_per_s": VAD_FLOOR_RISE_DB_PER_S, "vad_floor_start_db": VAD_FLOOR_START_DB,
            "vad_hangover_s": VAD_HANGOVER_S, "vad_swing_s": VAD_SWING_S, "vad_min_swing_db": VAD_MIN_SWING_DB,
            "vad_band_hz": list(VAD_BAND_HZ),
            "vad_swing_from": "the first sound: frames before the first above vad_absolute_min_db, and those "
                              "whose windows reach back into them, are no swing"}


def front_end_differences(stored: dict | None) -> list[str]:
    """The front-end constants whose stored values (an NPZ's, a dataset's or a checkpoint's) differ
    from this code's; empty when they all agree."""
    from .formats import config_differences
    return config_differences(front_end_config(), stored)


# --- the mel filterbank ------------------------------------------------------------------------
def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (as librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   fmin: float = MEL_FMIN, fmax: float = MEL_FMAX) -> np.ndarray:
    """Triangular filters of peak 1 on the mel scale. (n_mels, n_fft // 2 + 1) = (80, 257)."""
    fft_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz - lower) / (centre - lower)
    falling = (upper - fft_hz) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def mel_band_edges() -> np.ndarray:
    """(n_mels + 2,) Hz: band k spans edges[k]..edges[k+2] and peaks at edges[k+1]."""
    return mel_to_hz(np.linspace(hz_to_mel(MEL_FMIN), hz_to_mel(MEL_FMAX), N_MELS + 2))


WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN_LENGTH) / WIN_LENGTH)   # periodic Hann
FILTERBANK = mel_filterbank()
# |X|^2 scaled so a sine of amplitude A reads A^2: its peak |X| is A * sum(window) / 2
POWER_SCALE = (2.0 / WINDOW.sum()) ** 2


def frame_count(n_samples: int) -> int:
    """Frames a causal front-end makes from n_samples at 16 kHz: floor(n / 160)."""
    return n_samples // HOP_LENGTH


def frame_times(n_frames: int, first: int = 0) -> np.ndarray:
    """Seconds from the first sample to the end of each frame's window: (i + 1) * 10 ms."""
    return (np.arange(first, first + n_frames) + 1) * (HOP_LENGTH / SAMPLE_RATE)


@dataclass
class Features:
    """Frames of the front-end. mel (T, 80) float32 dB, rms_db (T,) float32 dBFS, vad (T,) uint8;
    lsf (T, 16) float32 radians, the line spectral frequencies (voiceface/lpc.py), when asked for."""
    mel: np.ndarray
    rms_db: np.ndarray
    vad: np.ndarray
    lsf: np.ndarray | None = None

    @staticmethod
    def concatenate(parts: list["Features"]) -> "Features":
        if not parts:
            return Features(np.zeros((0, N_MELS), np.float32), np.zeros(0, np.float32), np.zeros(0, np.uint8))
        lsf = np.concatenate([p.lsf for p in parts]) if all(p.lsf is not None for p in parts) else None
        return Features(np.concatenate([p.mel for p in parts]), np.concatenate([p.rms_db for p in parts]),
                        np.concatenate([p.vad for p in parts]), lsf)

    def __len__(self) -> int:
        return len(self.mel)


REACH_BACK_FRAMES = (WIN_LENGTH - 1) // HOP_LENGTH   # frames after a sample whose 25 ms windows still hold it: 2


@dataclass
class VoiceActivity:
    """Causal voice activity, state kept between calls. A frame is voice when its level stands
    VAD_MARGIN_DB above an adaptive noise floor and above a minimum, *and* the level in the voice
    band has swung by VAD_MIN_SWING_DB within the last VAD_SWING_S; voice is held VAD_HANGOVER_S
    after either fails.

    The minimum is VAD_MIN_THRESHOLD_DB (-55 dBFS), lowered for a quiet recording to
    VAD_BELOW_PEAK_DB under the loudest sound heard lately (a running peak of the level that decays
    VAD_PEAK_DECAY_DB_PER_S, starting where the noise floor starts: nothing heard yet), never below
    VAD_ABSOLUTE_MIN_DB. The real clips' loudest frames lie at -25 to -6 dBFS, so as recorded the
    minimum stays -55 dBFS on nearly every frame; 30 dB quieter, a fixed -55 dBFS lost half the
    voiced frames of the median clip (all of the quietest), and the level normaliser stopped
    following the speech (ARCHITECTURE.md, "Voice activity").

    The swing test is what tells a voice from loud stationary noise heard before the floor has
    adapted to it (the floor starts at VAD_FLOOR_START_DB and rises only 3 dB/s, so a recording that
    opens on fan noise at -45 dBFS used to be "voice" for its first seconds; in level mode the
    running mean then settled on the noise and the mouth opened). Measured over 0.5 s of the
    250-4000 Hz band: white, pink and brown noise swing by at most 3.7, 5.0 and 7.2 dB; the voiced
    frames of the 33 real clips by at least 12.2 dB in 99.5 % of frames, and the new test agrees
    with the level test alone on a median 99.5 % of their frames (ARCHITECTURE.md). (Also moving
    the floor straight to a level that does not swing was tried: it called the pauses of speech
    over noise silence, but lost 86 % of the voice of one real clip with loud background sound.)

    The swing is measured from the stream's first sound: frames before the first above
    VAD_ABSOLUTE_MIN_DB (leading digital silence: an encoder's priming, a silent head, a microphone's
    first buffers), and those whose windows reach back into them, are not its low end, so a file
    with zeros in front gets the decisions of the same file without them."""
    floor_db: float = VAD_FLOOR_START_DB
    hold: int = 0                 # frames of hangover left
    rise_per_frame: float = VAD_FLOOR_RISE_DB_PER_S / FRAME_RATE
    hangover_frames: int = int(round(VAD_HANGOVER_S * FRAME_RATE))
    recent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))   # last band levels, < swing window
    frames_seen: int = 0
    heard: bool = False           # a frame above VAD_ABSOLUTE_MIN_DB has come: the sound has begun
    unmeasured_until: int = REACH_BACK_FRAMES   # frames before this one are no swing's low end
    peak_db: float = VAD_FLOOR_START_DB      # the loudest recent level, decaying
    peak_decay_per_frame: float = VAD_PEAK_DECAY_DB_PER_S / FRAME_RATE

    def process(self, rms_db: np.ndarray, band_db: np.ndarray) -> np.ndarray:
        """rms_db, band_db (T,): each frame's level and its voice-band level, in dB."""
        window = int(round(VAD_SWING_S * FRAME_RATE))
        band_db = np.array(band_db, np.float32)
        # frames before the sound begins are no swing's low end: the first frames, whose windows reach
        # back before the audio (zeros), and a stream's leading digital silence (an encoder's priming, a
        # microphone's first buffers, a file's silent head) with the frames whose windows reach back
        # into it; else room noise after 50 ms of zeros "swung" from -120 dB and was voice for 0.5 s
        if not self.heard and (sound := np.flatnonzero(np.asarray(rms_db) > VAD_ABSOLUTE_MIN_DB)).size:
            self.heard = True
            self.unmeasured_until = max(self.unmeasured_until,
                                        self.frames_seen + int(sound[0]) + REACH_BACK_FRAMES)
        elif not self.heard:
            self.unmeasured_until = max(self.unmeasured_until, self.frames_seen + len(band_db))
        band_db[:max(0, min(self.unmeasured_until - self.frames_seen, len(band_db)))] = np.nan
        self.frames_seen += len(band_db)
        levels = np.concatenate([self.recent, band_db])
        padded = np.concatenate([np.full(window - 1 - len(self.recent), np.nan, np.float32), levels])
        spans = np.lib.stride_tricks.sliding_window_view(padded, window)        # (T, window): each frame's past
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)                  # an all-NaN span: no swing
            swing = np.nan_to_num(np.nanmax(spans, axis=1) - np.nanmin(spans, axis=1)) if len(spans) else np.zeros(0)
        self.recent = levels[max(0, len(levels) - (window - 1)):]
        vad = bytearray(len(rms_db))
        floor, hold, peak = self.floor_db, self.hold, self.peak_db
        rise, decay, held = self.rise_per_frame, self.peak_decay_per_frame, self.hangover_frames + 1
        # the frame loop is the front-end's one Python loop: comparisons instead of min() and max()
        # calls (the same arithmetic), one byte a frame: 23 ms for 10 minutes of frames instead of 77
        for i, (level, moving) in enumerate(zip(rms_db.tolist(), (swing >= VAD_MIN_SWING_DB).tolist())):
            floor = floor + rise                       # floor: max(min(level, floor + rise), VAD_FLOOR_MIN_DB)
            if level < floor:
                floor = level
            if floor < VAD_FLOOR_MIN_DB:
                floor = VAD_FLOOR_MIN_DB
            peak = peak - decay                        # peak: max(level, peak - decay)
            if level > peak:
                peak = level
            minimum = peak - VAD_BELOW_PEAK_DB         # within [VAD_ABSOLUTE_MIN_DB, VAD_MIN_THRESHOLD_DB]
            if minimum > VAD_MIN_THRESHOLD_DB:
                minimum = VAD_MIN_THRESHOLD_DB
            if minimum < VAD_ABSOLUTE_MIN_DB:
                minimum = VAD_ABSOLUTE_MIN_DB
            threshold = floor + VAD_MARGIN_DB
            if minimum > threshold:
                threshold = minimum
            if moving and level > threshold:
                hold = held
            if hold > 0:
                vad[i] = 1
                hold -= 1
        self.floor_db, self.hold, self.peak_db = floor, hold, peak
        return np.frombuffer(vad, dtype=np.uint8).copy()


VAD_BAND_BINS = tuple(int(round(hz * N_FFT / SAMPLE_RATE)) for hz in VAD_BAND_HZ)      # FFT bins 8..128
MEL_BLOCK_FRAMES = 10           # the mel projection runs on blocks of this many frames (see below)
WINDOW_32 = WINDOW.astype(np.float32)
FILTERBANK_T_32 = np.ascontiguousarray(FILTERBANK.T, dtype=np.float32)      # (257, 80)


@dataclass
class AudioFrontEnd:
    """Streaming front-end: feed 16 kHz mono float samples in chunks of any size; each call
    returns the frames whose windows are complete. Whole-file and chunked use give bitwise
    identical frames: the FFT works row by row, and the mel projection (a BLAS matrix product,
    whose rounding can depend on how many rows it is given) always runs on the same block shape —
    MEL_BLOCK_FRAMES frames aligned to absolute frame numbers, a partial block padded with zeros
    and recomputed as its frames arrive — so each frame meets the same arithmetic however the
    audio was cut. With `formants`, each frame's line spectral frequencies too (voiceface/lpc.py,
    from the same power spectrum; row by row, so they are chunk-invariant as well)."""
    formants: bool = False
    history: np.ndarray = field(default_factory=lambda: np.zeros(WIN_LENGTH - HOP_LENGTH, np.float32))
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    block: np.ndarray = field(default_factory=lambda: np.zeros((MEL_BLOCK_FRAMES, N_FFT // 2 + 1), np.float32))
    voice: VoiceActivity = field(default_factory=VoiceActivity)
    frames_done: int = 0

    def process(self, samples: np.ndarray) -> Features:
        import scipy.fft
        samples = finite(np.asarray(samples, dtype=np.float32).reshape(-1))[0]
        pending = np.concatenate([self.pending, samples])
        n_frames = len(pending) // HOP_LENGTH
        used = n_frames * HOP_LENGTH
        # (WIN - HOP) samples of history, then the complete hops: the frames' windows overlap
        signal = np.concatenate([self.history, pending[:used]])
        self.pending = pending[used:]
        if n_frames == 0:
            empty = Features.concatenate([])
            if self.formants:
                from .lpc import LPC_ORDER
                empty.lsf = np.zeros((0, LPC_ORDER), np.float32)
            return empty
        self.history = signal[len(signal) - (WIN_LENGTH - HOP_LENGTH):]
        frames = np.lib.stride_tricks.sliding_window_view(signal, WIN_LENGTH)[::HOP_LENGTH]   # (T, 400)
        spectrum = scipy.fft.rfft(frames * WINDOW_32, n=N_FFT, axis=1)                        # (T, 257)
        power = (spectrum.real ** 2 + spectrum.imag ** 2) * np.float32(POWER_SCALE)
        mel_power = self._project(power)                                                       # (T, 80)
        mel_db = np.clip(10.0 * np.log10(np.maximum(mel_power, POWER_FLOOR)), DB_FLOOR, DB_CEILING)
        energy = np.einsum("tw,tw->t", frames, frames) / WIN_LENGTH                           # mean square
        rms_db = (10.0 * np.log10(np.maximum(energy, POWER_FLOOR))).astype(np.float32)
        band = power[:, VAD_BAND_BINS[0]:VAD_BAND_BINS[1]].sum(axis=1)     # only its swing matters, not its scale
        band_db = (10.0 * np.log10(np.maximum(band, POWER_FLOOR))).astype(np.float32)
        lsf = None
        if self.formants:
            from .lpc import lsf_from_power
            lsf = lsf_from_power(power)
        return Features(mel_db.astype(np.float32), rms_db, self.voice.process(rms_db, band_db), lsf)

    def _project(self, power: np.ndarray) -> np.ndarray:
        """Mel power of new frames, computed block by block on (MEL_BLOCK_FRAMES, 257) blocks."""
        out = np.empty((len(power), N_MELS), np.float32)
        done = 0
        while done < len(power):
            row = self.frames_done % MEL_BLOCK_FRAMES
            if row == 0 and (whole := (len(power) - done) // MEL_BLOCK_FRAMES):
                # whole blocks in one stacked product: the same (MEL_BLOCK_FRAMES, 257) product for each
                # block as below, without a Python step per block
                take = whole * MEL_BLOCK_FRAMES
                blocks = power[done:done + take].reshape(whole, MEL_BLOCK_FRAMES, -1)
                out[done:done + take] = (blocks @ FILTERBANK_T_32).reshape(take, N_MELS)
                done += take
                self.frames_done += take
                continue
            take = min(MEL_BLOCK_FRAMES - row, len(power) - done)
            self.block[row:row + take] = power[done:done + take]
            out[done:done + take] = (self.block @ FILTERBANK_T_32)[row:row + take]
            done += take
            self.frames_done += take
            if row + take == MEL_BLOCK_FRAMES:
                self.block[:] = 0.0                      # the next block starts empty
        return out


@dataclass
class LevelNormaliser:
    """Causal level normalisation: each mel bin minus its running mean level over the past, as
    online mean normalisation does in streaming speech recognisers.

    The mean is taken of power (not dB), so a change of recording gain moves it by exactly that
    gain (bins clipped at the floor add almost nothing), and over *voiced* frames only, held
    through pauses, so silence neither drags it down nor makes the next word explode. It is the
    plain average of the voiced frames so far until LEVEL_NORM_SECONDS of speech have been heard,
    then an exponential average with that time constant (a fixed starting guess would dominate
    the power average for seconds). Each frame is normalised by the mean of the frames before it
    (before the first voiced frame: LEVEL_NORM_START_DB). State is kept between calls, so chunks
    give the whole-file result. (T, 80) dB and (T,) vad -> (T, 80) dB relative to the recent level."""
    mean_power: np.ndarray = field(default_factory=lambda: np.full(N_MELS, 10 ** (LEVEL_NORM_START_DB / 10)))
    voiced_seen: int = 0
    warmup: int = LEVEL_NORM_FRAMES

    def process(self, mel_db: np.ndarray, vad: np.ndarray) -> np.ndarray:
        return self.process_with_level(mel_db, vad)[0]

    def process_with_level(self, mel_db: np.ndarray, vad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """process(), and the running level (T, 80) dB each frame was measured against."""
        mel_db = np.asarray(mel_db, dtype=np.float64)
        if len(mel_db) == 0:
            return np.zeros((0, N_MELS), np.float32), np.zeros((0, N_MELS), np.float32)
        voiced = np.asarray(vad).astype(bool)
        before, self.mean_power, self.voiced_seen = running_voiced_mean(
            10.0 ** (mel_db / 10.0), voiced, self.mean_power, self.voiced_seen, self.warmup)
        level_db = floored_level(10.0 * np.log10(before))
        return relative_to_level(mel_db, level_db), level_db.astype(np.float32)


def level_floor(level_db: np.ndarray) -> np.ndarray:
    """The level input's floor for frames measured against running level `level_db` (T, 80) dB:
    LEVEL_FLOOR_BELOW_DB under its broadband level (the mean power over the bins). (T, 1) dB."""
    level_db = np.asarray(level_db, np.float64)
    return 10.0 * np.log10(np.mean(10.0 ** (level_db / 10.0), axis=-1, keepdims=True)) - LEVEL_FLOOR_BELOW_DB


def floored_level(level_db: np.ndarray) -> np.ndarray:
    """A running level (T, 80) dB with each bin raised to the floor: a bin that holds nothing (above
    a phone line's or a codec's cut-off) then reads 0 like a bin at its usual level, not a floor far
    above a level of nothing."""
    return np.maximum(np.asarray(level_db, np.float64), level_floor(level_db))


def relative_to_level(mel_db: np.ndarray, level_db: np.ndarray) -> np.ndarray:
    """Frames' mel in dB (T, 80) against the (floored) running level they are measured against
    (T, 80): each value first raised to the floor LEVEL_FLOOR_BELOW_DB under the level's broadband
    level, then the level subtracted. A gain on the recording moves frame and level alike, so the
    result does not change (down to the stored -120 dB). (T, 80) float32 dB."""
    mel_db, level_db = np.asarray(mel_db, np.float64), np.asarray(level_db, np.float64)
    return (np.maximum(mel_db, level_floor(level_db)) - level_db).astype(np.float32)


EXPONENTIAL_BLOCK = 8192       # frames a call of exponential_average scans at once (memory, and passes)


def exponential_average(values: np.ndarray, alpha: float, start: np.ndarray) -> np.ndarray:
    """y_k = (1 - alpha) * y_{k-1} + alpha * x_k down axis 0 of (V, n) values, from y_{-1} = start
    (n,): what scipy.signal.lfilter([alpha], [1, alpha - 1], x, axis=0, zi=(1 - alpha) * start)
    gives, without importing scipy.signal, which took 1.3-1.5 s of the start-up of every command
    that reads level inputs (stage 1.3, inference, evaluation). By doubling: after the pass with
    shift m each row holds its own 2m frames' share, y_k += c^m * y_{k-m} (c = 1 - alpha), so a
    block of B frames takes log2(B) vector passes; blocks of EXPONENTIAL_BLOCK follow one another,
    each from the last one's end. A row never reads a later one, so a call on the first frames
    gives those frames exactly what the whole gives. Passes stop once c^m is under 1e-40 (a sum of
    that many frames' power no longer moves a mean, whose frames span well under 1e20 in power).
    Agrees with lfilter within 1e-13 relative (tests/test_audio_features.py)."""
    x = np.asarray(values, np.float64)
    out = np.empty_like(x)
    c = 1.0 - alpha
    previous = np.asarray(start, np.float64)
    for begin in range(0, len(x), EXPONENTIAL_BLOCK):
        y = alpha * x[begin:begin + EXPONENTIAL_BLOCK]
        y[0] += c * previous
        shift, power = 1, c
        while shift < len(y) and power > 1e-40:
            y[shift:] += power * y[:-shift]           # the right side is made before the sum is taken
            shift, power = 2 * shift, power * power
        out[begin:begin + len(y)] = y
        previous = y[-1]
    return out


def running_voiced_mean(values: np.ndarray, voiced: np.ndarray, mean: np.ndarray, seen: int,
                        warmup: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The causal running mean over voiced frames that LevelNormaliser (of mel power) and the
    formant inputs (of line spectral frequencies, voiceface/lpc.py) take from each frame: the plain
    average of the voiced frames so far for the first `warmup` of them, then an exponential average
    with that time constant, held through unvoiced frames. (T, n) values, (T,) voiced, the state
    (mean (n,), voiced frames seen) -> (the mean in force before each frame (T, n), the new state)."""
    values = np.asarray(values, np.float64)[voiced]                      # (V, n)
    means = np.empty_like(values)
    # warm-up: the cumulative mean m_k = m_{k-1} + (p_k - m_{k-1}) / k
    n_warm = min(max(warmup - seen, 0), len(values))
    if n_warm:
        counts = seen + np.arange(1, n_warm + 1)[:, None]
        previous_sum = mean * seen
        means[:n_warm] = (previous_sum + np.cumsum(values[:n_warm], axis=0)) / counts
    # afterwards: m_k = m_{k-1} + alpha * (p_k - m_{k-1}), from the last mean before them
    if n_warm < len(values):
        start = means[n_warm - 1] if n_warm else mean
        means[n_warm:] = exponential_average(values[n_warm:], 1.0 / warmup, start)
    # the mean in force before each frame: after the last voiced frame before it
    history = np.concatenate([np.asarray(mean, np.float64)[None, :], means])
    before = history[np.cumsum(voiced) - voiced]
    if len(means):
        mean, seen = means[-1], seen + len(means)
    return before, mean, seen


# --- decoding ----------------------------------------------------------------------------------
@dataclass
class AudioSource:
    """What decoding found. Times on the container's clock, in seconds."""
    path: Path
    source_rate: int
    source_channels: int
    codec: str
    start_s: float                # presentation time of the first decoded audio sample
    video_start_s: float | None   # presentation time of the first video frame, if any
    samples: int = 0              # 16 kHz samples delivered (filled in as decoding proceeds)
    not_numbers: int = 0          # decoded samples that were NaN or infinite, taken as silence (a float file's fault)

    @property
    def offset_s(self) -> float:
        """Audio start relative to the first video frame (0 without video): where audio frame
        times must be shifted to meet the video's timestamps."""
        return self.start_s - (self.video_start_s if self.video_start_s is not None else self.start_s)


def finite(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """(the samples with every NaN or infinite one made 0, how many there were). A sample that is
    not a number cannot be heard; fed on, it would make every running state after it NaN (the
    resampler's filter, the noise floor, the level's mean, the model's left context) and the face
    NaN for the rest of the stream. The stream ONNX does the same in its graph."""
    bad = ~np.isfinite(samples)
    count = int(bad.sum())
    return (np.where(bad, 0.0, samples).astype(samples.dtype) if count else samples), count


def not_numbers_note(count: int) -> str:
    """What the stages say of a file whose decoded sound held samples that were not numbers."""
    return f"{count} samples were NaN or infinite, taken as silence; check how the file was exported"


def _to_float_mono(frame) -> np.ndarray:
    """A decoded PyAV audio frame to float64 mono in [-1, 1]: integers scaled by their full
    range, channels averaged (so identical channels give the same level as mono)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T                     # interleaved -> (channels, n)
    name = frame.format.name.rstrip("p")
    if name == "u8":
        data = (data.astype(np.float64) - 128.0) / 128.0
    elif name == "s16":
        data = data.astype(np.float64) / 32768.0
    elif name == "s32":
        data = data.astype(np.float64) / 2147483648.0
    elif name == "s64":
        data = data.astype(np.float64) / 9223372036854775808.0
    else:                                                        # flt, dbl
        data = data.astype(np.float64)
    return data.mean(axis=0)


def first_video_time(path: Path) -> float | None:
    import av
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            for frame in container.decode(video=0):
                return float(frame.time) if frame.time is not None else 0.0
    except av.error.FFmpegError:
        return None
    return None


def open_audio(path: str | Path) -> tuple[AudioSource, Iterator[np.ndarray]]:
    """Open a file's first audio stream. Returns (source info, iterator of float32 16 kHz mono
    blocks of about DECODE_BLOCK_SECONDS). Memory stays bounded whatever the file's length.
    Raises InputError for a missing, empty, unreadable or audio-less file."""
    import av
    import soxr
    from .video import open_container
    path = Path(path)
    container = open_container(path, "audio")
    stream = container.streams.audio[0]
    decoder = container.decode(stream)
    try:
        first = next(decoder)
    except StopIteration:
        container.close()
        raise InputError(f"{path}: audio stream holds no samples; re-export it") from None
    except av.error.FFmpegError as error:
        container.close()
        raise InputError(f"{path}: audio is corrupt ({error.strerror or error}); re-export it") from None
    source = AudioSource(path=path, source_rate=first.sample_rate, source_channels=len(first.layout.channels),
                         codec=stream.codec_context.name, start_s=float(first.time or 0.0),
                         video_start_s=first_video_time(path) if container.streams.video else None)

    def blocks() -> Iterator[np.ndarray]:
        resampler = soxr.ResampleStream(source.source_rate, SAMPLE_RATE, 1, dtype="float64", quality="HQ")
        block, size, limit = [], 0, int(DECODE_BLOCK_SECONDS * source.source_rate)
        decoded = 0
        try:
            frames = iter([first])
            while True:
                for frame in frames:
                    if frame.sample_rate != source.source_rate:
                        raise InputError(f"{path}: sample rate changes mid-stream ({source.source_rate} -> "
                                         f"{frame.sample_rate} Hz); re-encode it at one rate")
                    samples, not_numbers = finite(_to_float_mono(frame))
                    source.not_numbers += not_numbers
                    block.append(samples)
                    size += len(samples)
                    decoded += len(samples)
                    if size >= limit:
                        out = resampler.resample_chunk(np.concatenate(block))
                        source.samples += len(out)
                        yield out.astype(np.float32)
                        block, size = [], 0
                if frames is decoder:
                    break
                frames = decoder
            out = resampler.resample_chunk(np.concatenate(block) if block else np.zeros(0), last=True)
            source.samples += len(out)
            yield out.astype(np.float32)
        except av.error.FFmpegError as error:
            raise InputError(f"{path}: audio is corrupt or truncated after {decoded / source.source_rate:.2f} s "
                             f"({error.strerror or error}); re-export it") from None
        finally:
            container.close()

    return source, blocks()


def load_audio(path: str | Path) -> tuple[AudioSource, np.ndarray]:
    """A whole file as float32 16 kHz mono (for short files and tests; stages use open_audio)."""
    source, blocks = open_audio(path)
    return source, np.concatenate(list(blocks))


def waveform_overview(path: str | Path, points: int = 20000) -> tuple[np.ndarray, float]:
    """A file's waveform for a plot, in bounded memory: the sample of largest magnitude in each of
    about `points` equal stretches, decoded block by block (two hours of 16 kHz audio are 460 MB as
    float32; this is 80 kB). Returns (values, their rate in Hz)."""
    from .video import probe_duration
    duration = probe_duration(path)
    step = max(1, int(duration * SAMPLE_RATE / points)) if duration else 1
    _, blocks = open_audio(path)
    peaks, carry = [], np.zeros(0, np.float32)
    for block in blocks:
        carry = np.concatenate([carry, block])
        whole = len(carry) // step * step
        if whole:
            rows = carry[:whole].reshape(-1, step)
            peaks.append(rows[np.arange(len(rows)), np.abs(rows).argmax(axis=1)])
            carry = carry[whole:]
    if len(carry):
        peaks.append(carry[[int(np.abs(carry).argmax())]])
    return (np.concatenate(peaks) if peaks else np.zeros(0, np.float32)), SAMPLE_RATE / step


def compute_features(samples: np.ndarray, formants: bool = False) -> Features:
    """Features of a whole 16 kHz mono signal in one call: the same as feeding it in chunks."""
    return AudioFrontEnd(formants=formants).process(samples)


def extract_file_features(path: str | Path, formants: bool = False) -> tuple[AudioSource, Features]:
    """Decode, resample and featurise a file block by block, in bounded memory."""
    source, blocks = open_audio(path)
    front_end = AudioFrontEnd(formants=formants)
    features = Features.concatenate([front_end.process(block) for block in blocks])
    if source.samples < WIN_LENGTH:
        raise InputError(f"{path}: audio shorter than one 25 ms window ({source.samples} samples at "
                         f"{SAMPLE_RATE} Hz); use a longer recording")
    return source, features


# --- the NPZ -----------------------------------------------------------------------------------
@dataclass
class AudioFeatureFile:
    meta: dict
    times: np.ndarray          # (T,) seconds from the audio's first sample to each frame's end
    mel: np.ndarray            # (T, 80) float32 dB in [DB_FLOOR, DB_CEILING] = [-120, 10]
    rms_db: np.ndarray         # (T,) float32 dBFS
    vad: np.ndarray            # (T,) uint8
    lsf: np.ndarray | None = None   # (T, 16) float32 radians; None in files written before they were stored


def write_audio_features(path: Path, meta: dict, features: Features) -> dict:
    """Write audio_features.npz atomically; returns the full metadata stored in it."""
    from .formats import atomic_path
    from .lpc import lsf_config
    meta = dict(format=AUDIO_FEATURES_FORMAT, format_version=AUDIO_FEATURES_FORMAT_VERSION, **meta,
                front_end=front_end_config())
    extra = {}
    if features.lsf is not None:
        meta["lsf"], extra["lsf"] = lsf_config(), features.lsf
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, mel=features.mel, times=frame_times(len(features)), rms_db=features.rms_db,
                 vad=features.vad, meta=np.array(json.dumps(meta)), **extra)
    return meta


def read_audio_features(path: str | Path) -> AudioFeatureFile:
    """Read an audio_features.npz, refusing another format version or other front-end constants."""
    from .formats import check_header
    try:
        with np.load(path) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {k: npz[k] for k in ("times", "mel", "rms_db", "vad")}
            arrays["lsf"] = npz["lsf"] if "lsf" in npz.files else None
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{path}: cannot read audio features ({error}); re-run stage 1.2 with --force")
    check_header(meta, path, AUDIO_FEATURES_FORMAT, AUDIO_FEATURES_FORMAT_VERSION)
    different = front_end_differences(meta.get("front_end"))
    if different:
        raise FormatError(f"{path}: made with other front-end constants ({', '.join(different)}); "
                          "re-run stage 1.2 with --force")
    if arrays["lsf"] is not None:
        from .lpc import lsf_config
        if meta.get("lsf") != lsf_config():
            arrays["lsf"] = None            # other formant constants: as if not stored (their reader says so)
    return AudioFeatureFile(meta=meta, **arrays)
