"""Linear prediction of a frame's spectrum, and its line spectral frequencies: a smooth code of
the formants (which say how open the vocal tract is). Diagnostics only — the linear probe's and
extra_channels.py's extra input channels (ARCHITECTURE.md, "What stops the speaker's own jaw near
0.6"); the model's front-end is voiceface/audio.py's log-mel.

Frames follow the front-end's causal framing: frame i is the 400 samples (25 ms at 16 kHz) ending at
sample (i + 1) * 160, pre-emphasised (1 - 0.97 z^-1) and Hamming-windowed; a 16th-order fit by the
autocorrelation method (2 + kHz poles, the usual rule at 16 kHz).
"""
from __future__ import annotations

import numpy as np

from .audio import LEVEL_NORM_SECONDS
from .constants import FRAME_RATE

LPC_ORDER = 16
PRE_EMPHASIS = 0.97


def lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """(n, samples) windowed frames -> (n, order + 1) prediction polynomials A(z) = 1 + a1 z^-1 + …
    by the autocorrelation method (Levinson-Durbin, every frame at once; a silent frame gives A = 1)."""
    spectrum = np.fft.rfft(frames, 2 * frames.shape[1], axis=1)
    r = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :order + 1]
    r[:, 0] = r[:, 0] * (1 + 1e-9) + 1e-12                    # white-noise floor: stable in silence
    a = np.zeros((len(frames), order + 1)); a[:, 0] = 1.0
    error = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -(r[:, i] + np.einsum("nj,nj->n", a[:, 1:i], r[:, i - 1:0:-1])) / error
        a[:, 1:i + 1] = a[:, 1:i + 1] + k[:, None] * np.c_[a[:, i - 1:0:-1], np.ones(len(a))]
        error = error * (1 - k ** 2)
    return a


def line_spectral_frequencies(a: np.ndarray) -> np.ndarray:
    """(n, p + 1) polynomials (p even) -> (n, p) line spectral frequencies in radians, ascending:
    the angles in (0, pi) of the roots of A(z) ± z^-(p+1) A(1/z), which interlace on the unit
    circle for a stable A; formants sit between close pairs."""
    n, p = a.shape[0], a.shape[1] - 1
    padded = np.c_[a, np.zeros(n)]
    mirrored = padded[:, ::-1]
    angles = []
    for poly in (padded + mirrored, padded - mirrored):        # P and Q, degree p + 1, leading 1
        companion = np.zeros((n, p + 1, p + 1))
        companion[:, 0, :] = -poly[:, 1:] / poly[:, :1]
        companion[:, np.arange(1, p + 1), np.arange(p)] = 1.0
        angles.append(np.abs(np.angle(np.linalg.eigvals(companion))))
    # 2p + 2 roots: z = 1 (Q), z = -1 (P) and p conjugate pairs, whose |angle| comes twice each
    return np.sort(np.concatenate(angles, axis=1), axis=1)[:, 1:-1:2]


def audio_lsf(wave: np.ndarray, order: int = LPC_ORDER) -> np.ndarray:
    """16 kHz audio -> (floor(n / 160), order) line spectral frequencies per front-end frame
    (frame i: the 400 samples ending at sample (i + 1) * 160, zeros before the start)."""
    from scipy.signal import lfilter
    from .constants import HOP_LENGTH, WIN_LENGTH
    x = lfilter([1.0, -PRE_EMPHASIS], [1.0], np.r_[np.zeros(WIN_LENGTH), np.asarray(wave, np.float64)])
    count = len(wave) // HOP_LENGTH
    index = (np.arange(count)[:, None] + 1) * HOP_LENGTH + np.arange(WIN_LENGTH)[None, :]
    out = np.empty((count, order))
    for start in range(0, count, 2000):                         # 20 s at a time: bounded memory
        frames = x[index[start:start + 2000]] * np.hamming(WIN_LENGTH)
        out[start:start + 2000] = line_spectral_frequencies(lpc(frames, order))
    return out.astype(np.float32)


def processed_clip_lsf(folder) -> np.ndarray:
    """A processed clip's line spectral frequencies, one row per frame of its stage 1.2 features,
    from the source file its audio_features.npz names (decoded as the front-end decodes it)."""
    from pathlib import Path

    from .audio import AUDIO_FEATURES_FILENAME, load_audio, read_audio_features
    from .errors import InputError
    stored = read_audio_features(Path(folder) / AUDIO_FEATURES_FILENAME)
    source = stored.meta["source"]["path"]
    if not Path(source).exists():
        raise InputError(f"{source}: the source of {folder} is not there any more; the line spectral "
                         "frequencies are computed from it")
    lsf = audio_lsf(load_audio(source)[1])
    if len(lsf) != len(stored.mel):
        raise InputError(f"{source}: {len(lsf)} frames against {len(stored.mel)} in {folder}; "
                         "is it the file stage 1.2 read? re-run stage 1.2")
    return lsf


# A voice's typical line spectral frequencies (radians), what the running mean starts from (it
# matters only before the first voiced frame): over the 33 real clips in data/real/processed, the
# median of each clip's median over its voiced frames —
#   np.median([np.median(processed_clip_lsf(f)[read_audio_features(f"{f}/audio_features.npz").vad > 0],
#              axis=0) for f in glob.glob("data/real/processed/*")], axis=0)
TYPICAL_LSF = np.array([0.1775, 0.2465, 0.5003, 0.6685, 0.8606, 1.0259, 1.2076, 1.4037,
                        1.606, 1.7911, 1.9847, 2.1631, 2.369, 2.5305, 2.7215, 2.8649])
RUNNING_MEAN_FRAMES = int(LEVEL_NORM_SECONDS * FRAME_RATE)   # voiced frames: the level normaliser's 3 s of speech


def running_voice_mean(values: np.ndarray, vad: np.ndarray, start: np.ndarray = TYPICAL_LSF,
                       frames: int = RUNNING_MEAN_FRAMES) -> np.ndarray:
    """Causal: each frame's mean of the voiced frames before it — their plain average for the
    first `frames` of them, then an exponential average with that time constant, held through
    pauses; `start` before the first. Taken from each frame, it removes what a voice and a
    microphone add to every frame, as the level normaliser does for the mel. (T, n), (T,) -> (T, n)."""
    values = np.asarray(values, np.float64)
    out = np.empty_like(values)
    mean, seen = np.array(start, np.float64), 0
    for t, voiced in enumerate(np.asarray(vad).astype(bool)):
        out[t] = mean
        if voiced:
            seen += 1
            mean = mean + (values[t] - mean) / min(seen, frames)
    return out
