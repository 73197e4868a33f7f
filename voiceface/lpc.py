"""Linear prediction of a frame's spectrum, and its line spectral frequencies: a smooth code of
the formants (which say how open the vocal tract is). The front-end computes them on request
(`AudioFrontEnd(formants=True)`), stage 1.2 stores them, and a model trained with
`train.py --formants` reads them beside the mel (`FormantInputs`); the linear probe's and
extra_channels.py's diagnostics use them too (ARCHITECTURE.md, "Formant channels").

Frames are the front-end's: frame i is the 400 samples (25 ms at 16 kHz) ending at sample
(i + 1) * 160, Hann-windowed; the autocorrelation comes from its power spectrum, pre-emphasised
(1 - 0.97 z^-1) there; a 16th-order fit by the autocorrelation method (2 + kHz poles, the usual
rule at 16 kHz).
"""
from __future__ import annotations

import numpy as np

from .audio import LEVEL_NORM_FRAMES

LPC_ORDER = 16
PRE_EMPHASIS = 0.97
# r[0] is raised by this share (white noise 30 dB under the frame's power; Opus's SILK encoder adds
# the same share before its float32 whitening fit, FIND_PITCH_WHITE_NOISE_FRACTION in
# silk/tuning_parameters.h) and by LEVINSON_FLOOR (digital silence). It bounds how ill-conditioned a
# loud vowel's fit can be, so that float32 arithmetic (the stream ONNX, which runs where a runtime has
# no float64) lands within 4e-4 rad of this float64 one on the 33 real clips, where a share of 1e-9
# (until 2026-12-06) left 437 of their 39,983 frames over 1e-3 rad off, up to 0.44 (ARCHITECTURE.md,
# "Formant channels": the floors measured, and what 1e-3 costs the one-speaker recipe).
LEVINSON_WHITE_NOISE = 1e-3
LEVINSON_FLOOR = 1e-12


def levinson(r: np.ndarray) -> np.ndarray:
    """(n, order + 1) autocorrelations -> (n, order + 1) prediction polynomials (Levinson-Durbin,
    every row at once, row by row the same arithmetic; the white-noise floor above keeps silence
    stable and the fit well-conditioned)."""
    r = np.array(r, np.float64)
    order = r.shape[1] - 1
    r[:, 0] = r[:, 0] * (1 + LEVINSON_WHITE_NOISE) + LEVINSON_FLOOR
    a = np.zeros((len(r), order + 1)); a[:, 0] = 1.0
    error = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -(r[:, i] + (a[:, 1:i] * r[:, i - 1:0:-1]).sum(axis=1)) / error
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1:0:-1]      # (the right side is read before the write)
        a[:, i] = k
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


LSF_GRID = 256                  # points over [0, pi] where the grid search looks for sign changes


def line_spectral_frequencies_fast(a: np.ndarray) -> np.ndarray:
    """line_spectral_frequencies by the speech codecs' way: P and Q, made real on the unit circle,
    evaluated at LSF_GRID + 1 points by one single-precision FFT each, their sign changes refined by
    linear interpolation (within 1.3e-4 rad of the eigenvalues on random filters, a fifth of a hertz);
    a row whose changes do not count p / 2 each (two roots within one grid step) falls back to the
    eigenvalues. Row by row the same arithmetic, so chunks give the whole file's values."""
    import scipy.fft
    n, p = a.shape[0], a.shape[1] - 1
    padded = np.c_[a, np.zeros(n)]
    mirrored = padded[:, ::-1]
    w = np.arange(LSF_GRID + 1) * (np.pi / LSF_GRID)
    cos, sin = (f(w * (p + 1) / 2).astype(np.float32) for f in (np.cos, np.sin))   # e^{jw(p+1)/2}
    found, complete = [], np.ones(n, bool)
    for poly, inner in ((padded + mirrored, slice(0, LSF_GRID)),          # P: real after the turn; a root at pi
                        (padded - mirrored, slice(1, LSF_GRID + 1))):     # Q: imaginary; a root at 0
        spectrum = scipy.fft.rfft(poly.astype(np.float32), 2 * LSF_GRID, axis=1)
        turned = (spectrum.real * cos - spectrum.imag * sin if inner.start == 0 else
                  spectrum.real * sin + spectrum.imag * cos)
        values, grid = turned[:, inner].astype(np.float64), w[inner]
        change = np.signbit(values[:, :-1]) != np.signbit(values[:, 1:])
        complete &= change.sum(axis=1) == p // 2
        roots = np.zeros((n, p // 2))
        rows, cols = np.nonzero(change & complete[:, None])
        if len(rows):
            left, right = values[rows, cols], values[rows, cols + 1]
            at = grid[cols] + (grid[cols + 1] - grid[cols]) * left / (left - right)
            roots[complete] = at.reshape(-1, p // 2)
        found.append(roots)
    out = np.sort(np.concatenate(found, axis=1), axis=1)
    if not complete.all():
        out[~complete] = line_spectral_frequencies(a[~complete])
    return out


def lsf_from_power(power: np.ndarray, order: int = LPC_ORDER) -> np.ndarray:
    """The front-end's power spectra (T, 257) of its Hann-windowed 25 ms frames -> (T, order) line
    spectral frequencies (radians) of the pre-emphasised frames: the autocorrelation is the inverse
    FFT of the power (exact up to lag 112 for 400 samples in 512 points), the pre-emphasis
    (1 - 0.97 z^-1) a weight on it. Row by row, so chunked streams give the whole file's values."""
    import scipy.fft
    power = np.asarray(power, np.float64)
    weight = 1.0 + PRE_EMPHASIS ** 2 - 2.0 * PRE_EMPHASIS * np.cos(np.linspace(0.0, np.pi, power.shape[1]))
    r = scipy.fft.irfft(power * weight, axis=1)[:, :order + 1]
    return line_spectral_frequencies_fast(levinson(r)).astype(np.float32)


def audio_lsf(wave: np.ndarray) -> np.ndarray:
    """16 kHz audio -> (floor(n / 160), 16) line spectral frequencies per front-end frame."""
    from .audio import compute_features
    return compute_features(np.asarray(wave, np.float32), formants=True).lsf


def processed_clip_lsf(folder) -> np.ndarray:
    """A processed clip's line spectral frequencies, one row per frame of its stage 1.2 features
    (stored there; files from before they were stored are refused with what to do)."""
    from pathlib import Path

    from .audio import AUDIO_FEATURES_FILENAME, read_audio_features
    from .errors import InputError
    stored = read_audio_features(Path(folder) / AUDIO_FEATURES_FILENAME)
    if stored.lsf is None:
        raise InputError(f"{Path(folder) / AUDIO_FEATURES_FILENAME}: holds no line spectral frequencies of these "
                         "constants (written before stage 1.2 stored them); re-run stage 1.2 with --force")
    return stored.lsf


# A voice's typical line spectral frequencies (radians), what the running mean starts from (it
# matters only before the first voiced frame), and the spread of each frame's frequencies less
# that running mean, by which the model's formant inputs are divided (to FORMANT_INPUT_SPREAD): over
# the 33 real clips in data/real/processed, the median of each clip's median over its voiced frames,
# and the median of each clip's spread over all its frames —
#   lsf, vad = zip(*[(processed_clip_lsf(f), read_audio_features(f"{f}/audio_features.npz").vad > 0)
#                    for f in sorted(glob.glob("data/real/processed/*"))])
#   np.median([np.median(x[v], axis=0) for x, v in zip(lsf, vad)], axis=0)
#   np.median([(x - running_voiced_mean(x, v, TYPICAL_LSF, 0, RUNNING_MEAN_FRAMES)[0]).std(axis=0)
#              for x, v in zip(lsf, vad)], axis=0)
# (measured with the white-noise floor of before, 1e-9; with 1e-3 the medians are at most 0.012 rad away
# and the spreads shrink by 2-15 %, the top line's most: kept, since they only centre and scale)
TYPICAL_LSF = np.array([0.1776, 0.2458, 0.4981, 0.6676, 0.8603, 1.0245, 1.2084, 1.4034,
                        1.6054, 1.7918, 1.9842, 2.1629, 2.3695, 2.5304, 2.7218, 2.8649])
LSF_SPREAD = np.array([0.0507, 0.096, 0.115, 0.1295, 0.1213, 0.121, 0.1296, 0.112,
                       0.1045, 0.0974, 0.0929, 0.0811, 0.0713, 0.0627, 0.0589, 0.0494])
FORMANT_INPUT_SPREAD = 0.3      # the model's formant inputs spread this much (the level-normalised mel bins: 0.1-0.3)
RUNNING_MEAN_FRAMES = LEVEL_NORM_FRAMES   # voiced frames: the level normaliser's 3 s of speech


def lsf_config() -> dict:
    """Every constant that shapes the line spectral frequencies themselves: stored with stage 1.2's
    features; a file made with other values is read as holding none."""
    return {"kind": "line spectral frequencies", "lpc_order": LPC_ORDER, "pre_emphasis": PRE_EMPHASIS,
            "autocorrelation": "inverse FFT of the front-end's Hann power spectrum", "lsf_grid": LSF_GRID,
            "levinson_white_noise": LEVINSON_WHITE_NOISE}


def formant_config() -> dict:
    """lsf_config and the constants of the formant inputs made from them: stored with the dataset
    and the checkpoint; readers refuse other values."""
    return {**lsf_config(), "normalise": "less the running mean of the voiced frames before each frame",
            "running_mean_frames": RUNNING_MEAN_FRAMES, "start_rad": [float(v) for v in TYPICAL_LSF],
            "spread_rad": [float(v) for v in LSF_SPREAD], "input_spread": FORMANT_INPUT_SPREAD}


def formant_differences(stored: dict | None) -> list[str]:
    """The formant constants whose stored values (a dataset's or a checkpoint's) differ from this
    code's, as front_end_differences names the front-end's; empty when they all agree."""
    from .formats import config_differences
    return config_differences(formant_config(), stored)


def running_voice_mean(values: np.ndarray, vad: np.ndarray, start: np.ndarray = TYPICAL_LSF,
                       frames: int = RUNNING_MEAN_FRAMES) -> np.ndarray:
    """Causal: each frame's mean of the voiced frames before it (audio.running_voiced_mean from a
    fresh start): taken from each frame, it removes what a voice and a microphone add to every
    frame, as the level normaliser does for the mel. (T, n), (T,) -> (T, n)."""
    from .audio import running_voiced_mean
    return running_voiced_mean(values, np.asarray(vad).astype(bool), np.asarray(start, np.float64), 0, frames)[0]


class FormantInputs:
    """The model's formant channels, causal and streaming like the level normaliser: each frame's
    line spectral frequencies less the running mean of the voiced frames before it, divided by
    LSF_SPREAD and scaled to FORMANT_INPUT_SPREAD. State is kept, so chunks give the whole-clip
    result. (T, 16) radians, (T,) vad -> (T, 16) float32."""

    def __init__(self):
        self.mean, self.seen = np.array(TYPICAL_LSF, np.float64), 0

    def process(self, lsf: np.ndarray, vad: np.ndarray) -> np.ndarray:
        from .audio import running_voiced_mean
        lsf = np.asarray(lsf, np.float64)
        if len(lsf) == 0:
            return np.zeros((0, LPC_ORDER), np.float32)
        before, self.mean, self.seen = running_voiced_mean(lsf, np.asarray(vad).astype(bool), self.mean, self.seen,
                                                           RUNNING_MEAN_FRAMES)
        return self.against(lsf, before)

    @staticmethod
    def against(lsf: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Formant inputs of frames measured against a given running mean (what silence spliced in
        at a frame meets: the mean holds through unvoiced frames)."""
        return (FORMANT_INPUT_SPREAD * (np.asarray(lsf, np.float64) - mean) / LSF_SPREAD).astype(np.float32)

    @staticmethod
    def mean_of(lsf: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """The running mean each frame's formant input was measured against: the inverse of against."""
        return np.asarray(lsf, np.float64) - np.asarray(inputs, np.float64) * LSF_SPREAD / FORMANT_INPUT_SPREAD
