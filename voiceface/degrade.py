"""Sound made worse the ways recordings are: a phone line's band, a low-bitrate MP3, a quiet
recording, a room's echo, stationary noise and other voices at a given signal-to-noise ratio. 16 kHz mono float32 in and out, the same
length, time-aligned with the input (an encoder's delay removed), so a degraded clip keeps its
labels. 3_inference/degraded_sound.py scores models on them; the tests check each one.

The signal-to-noise ratio is taken against the *active* speech level: the mean power of the frames
voice activity marks (ITU-T P.56 measures active speech similarly), not of the whole file, whose
pauses would make the noise look quieter than a listener hears it.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np

from .constants import SAMPLE_RATE

SNRS_DB = (30.0, 20.0, 10.0)            # pink noise: a quiet room, an office, a busy cafe
BABBLE_SNR_DB = 10.0                    # other voices
BABBLE_VOICES = 4
MP3_KBPS = 32                           # a low web or voice-message bitrate at 16 kHz
PHONE_RATE = 8000                       # narrow-band telephony: nothing above 4 kHz
QUIETER_DB = (20.0, 30.0, 40.0)         # a recording this much quieter (a low microphone gain, a far microphone)
REVERB = ((0.3, 6.0), (0.6, 0.0))      # a room's echo: RT60 s and direct-to-reverberant ratio dB; a furnished room
#                                         heard from about a metre, a bare one from two or three
REVERB_PREDELAY_S = 0.003               # the first reflection arrives this long after the direct sound


def active_power(samples: np.ndarray, vad: np.ndarray) -> float:
    """Mean power of the samples in the frames voice activity marks (all of them when none is)."""
    from .constants import HOP_LENGTH
    voiced = np.repeat(np.asarray(vad, bool), HOP_LENGTH)[:len(samples)]
    chosen = samples[:len(voiced)][voiced] if voiced.any() else samples
    return float(np.mean(np.square(chosen, dtype=np.float64)))


def mix_at_snr(samples: np.ndarray, noise: np.ndarray, snr_db: float, speech_power: float) -> np.ndarray:
    """`noise` (looped or cut to length) scaled so that speech_power over its mean power is snr_db, added."""
    noise = np.resize(np.asarray(noise, np.float64), len(samples))
    scale = np.sqrt(speech_power / 10 ** (snr_db / 10) / max(float(np.mean(noise ** 2)), 1e-20))
    return (samples + scale * noise).astype(np.float32)


def phone_band(samples: np.ndarray) -> np.ndarray:
    """Down to 8 kHz sampling and back: the band a phone line carries."""
    import soxr
    narrow = soxr.resample(np.asarray(samples, np.float64), SAMPLE_RATE, PHONE_RATE, quality="HQ")
    wide = soxr.resample(narrow, PHONE_RATE, SAMPLE_RATE, quality="HQ")
    return np.resize(wide, len(samples)).astype(np.float32)


def mp3_round_trip(samples: np.ndarray, kbps: int = MP3_KBPS) -> np.ndarray:
    """Encoded as MP3 at `kbps` with PyAV and decoded again, the encoder's delay found by
    cross-correlation against the input and removed."""
    import av
    from av.audio.resampler import AudioResampler
    samples = np.asarray(samples, np.float32)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=SAMPLE_RATE)
        stream.layout, stream.bit_rate = "mono", kbps * 1000
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        resampler = AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout="mono",
                                   rate=SAMPLE_RATE)
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]).astype(np.float32)
    span = min(len(samples), 2 * SAMPLE_RATE)                 # the delay is a few thousand samples at most
    search = min(len(decoded) - span, 4 * 1152 + 1)
    delay = int(np.argmax(np.correlate(decoded[:span + max(search, 0)], samples[:span], "valid"))) if search > 0 else 0
    out = decoded[delay:delay + len(samples)]
    return np.pad(out, (0, len(samples) - len(out)))


def room_impulse_response(rt60_s: float, drr_db: float, seed: int = 0) -> np.ndarray:
    """A room's impulse response in the statistical model of late reverberation (Polack's: Gaussian
    noise under an exponential envelope; no early reflections, no frequency-dependent decay): the
    direct sound (1 at lag 0, so the sound keeps its timing), then noise whose amplitude falls 60 dB
    in rt60_s, from REVERB_PREDELAY_S on, scaled so that the direct sound's energy over the tail's
    is drr_db."""
    rng = np.random.default_rng(seed)
    n = int(round(rt60_s * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60_s)
    tail[:int(round(REVERB_PREDELAY_S * SAMPLE_RATE))] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail ** 2))
    tail[0] = 1.0
    return tail


def room_reverb(samples: np.ndarray, rt60_s: float, drr_db: float, seed: int = 0) -> np.ndarray:
    """The sound as a microphone in a room hears it: convolved with room_impulse_response, cut to
    the input's length (the echo of the last words is lost, the timing kept)."""
    from scipy.signal import fftconvolve
    h = room_impulse_response(rt60_s, drr_db, seed)
    return fftconvolve(np.asarray(samples, np.float64), h)[:len(samples)].astype(np.float32)


def conditions(speech_power: float, others: list[np.ndarray], seed: int = 0) -> dict[str, Callable]:
    """Name -> function(samples) of every condition, in the order tables show them. `others`: other
    recordings (16 kHz) for the babble, of which the first BABBLE_VOICES are mixed at equal level."""
    from .synthetic import room_noise

    def pink(snr_db):
        return lambda x: mix_at_snr(x, room_noise("pink", -30.0, len(x) / SAMPLE_RATE, SAMPLE_RATE, seed),
                                    snr_db, speech_power)

    out = {"as recorded": lambda x: np.asarray(x, np.float32),
           "phone band (8 kHz sampling)": phone_band,
           f"MP3 at {MP3_KBPS} kbit/s": mp3_round_trip}
    out.update({f"{db:g} dB quieter": (lambda gain: lambda x: (np.asarray(x, np.float64) * gain).astype(np.float32))(
        10 ** (-db / 20)) for db in QUIETER_DB})
    out.update({f"room echo, RT60 {rt60:g} s, direct {drr:+g} dB": (lambda r, d: lambda x: room_reverb(x, r, d, seed))(rt60, drr)
                for rt60, drr in REVERB})
    out.update({f"pink noise, {snr:g} dB SNR": pink(snr) for snr in SNRS_DB})
    voices = [np.asarray(v, np.float64) for v in others[:BABBLE_VOICES] if len(v) and np.any(v)]
    if voices:
        longest = max(map(len, voices))
        babble = sum(np.resize(v / np.sqrt(np.mean(v ** 2)), longest) for v in voices)
        out[f"babble of {len(voices)} other recordings, {BABBLE_SNR_DB:g} dB SNR"] = \
            lambda x: mix_at_snr(x, babble, BABBLE_SNR_DB, speech_power)
    return out
