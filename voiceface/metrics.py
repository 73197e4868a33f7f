"""Quality metrics, defined once: training's validation and the evaluation script use these.
Arrays are (T, 59) in the dataset's normalised units with a (T,) mask of frames to count."""
from __future__ import annotations

import numpy as np

from .constants import BLENDSHAPE_NAMES, FRAME_RATE, MOUTH_INDICES, N_BLENDSHAPES
from .dataset import TRANSLATION_SCALE_CM

JAW_OPEN = BLENDSHAPE_NAMES.index("jawOpen")
MOUTH_CLOSE = BLENDSHAPE_NAMES.index("mouthClose")
MOUTH_FUNNEL = BLENDSHAPE_NAMES.index("mouthFunnel")
BEST_LAG_FRAMES = 30            # the best-lag figures search +-300 ms
SMILES = (BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight"))


class Moments:
    """Each column's count, mean, standard deviation (population), least and greatest value over
    blocks of rows added one at a time, in float64: statistics of more frames than memory holds
    (stage 1.3's manifest, the ridge baseline's feature scaling)."""

    def __init__(self):
        self.count, self.total, self.squares, self.low, self.high = 0, 0.0, 0.0, None, None

    def add(self, rows) -> None:
        if not len(rows):
            return
        rows = np.asarray(rows, np.float64)
        self.count += len(rows)
        self.total = self.total + rows.sum(axis=0)
        self.squares = self.squares + (rows * rows).sum(axis=0)
        low, high = rows.min(axis=0), rows.max(axis=0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)

    def mean(self) -> np.ndarray:
        return self.total / self.count

    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.squares / self.count - self.mean() ** 2, 0.0))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r; 0 when either side is constant (a flat prediction explains nothing)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def rotation_error_degrees(q_pred: np.ndarray, q_true: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the rotation between two sets of quaternions (T, 4), sign-blind."""
    q_pred = q_pred / np.maximum(np.linalg.norm(q_pred, axis=1, keepdims=True), 1e-12)
    q_true = q_true / np.maximum(np.linalg.norm(q_true, axis=1, keepdims=True), 1e-12)
    dot = np.clip(np.abs(np.sum(q_pred * q_true, axis=1)), 0.0, 1.0)
    return np.degrees(2 * np.arccos(dot))


def amplitude(prediction: np.ndarray, truth: np.ndarray) -> float:
    """How far a track moves against the truth: its spread over the truth's (1: as much; r is blind
    to scale, and a jaw that moves at a fifth of the truth can still correlate at 0.94)."""
    return float(np.std(prediction) / max(float(np.std(truth)), 1e-9))


def flicker(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray, fps: float = 30.0) -> float | None:
    """How much a 100 Hz track flickers against the truth, for its swing: each one's mean |second
    difference| from one animation frame to the next (at `fps`, over runs of three frames with a face)
    over its spread, the prediction's over the truth's (1: as steady as the video for the distance it
    moves; a model that moves half as far with the video's frame-to-frame jitter reads 2). None where
    either is still."""
    mask = np.asarray(mask, bool)
    picks = np.round(np.arange(0.0, len(mask) * fps / FRAME_RATE) * FRAME_RATE / fps).astype(int)
    picks = picks[picks < len(mask)]
    known = mask[picks]
    triples = known[2:] & known[1:-1] & known[:-2]
    if triples.sum() < 3:
        return None

    def per_swing(track: np.ndarray) -> float:
        y = np.asarray(track, np.float64)[picks]
        jitter = np.abs(y[2:] - 2 * y[1:-1] + y[:-2])[triples].mean()
        return jitter / max(float(y[known].std()), 1e-9)

    truth_flicker = per_swing(truth)
    return float(per_swing(prediction) / truth_flicker) if truth_flicker > 0 and np.std(prediction) > 0 else None


def clip_metrics(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The training metrics of one clip: MAE over the 52 blendshapes and over the mouth shapes,
    Pearson r of jawOpen, mouthClose, mouthFunnel and the smiles (mean of left and right) at zero
    lag, jawOpen's amplitude (its spread over the extracted one's: 1 moves as much as the face did),
    translation MAE in cm and rotation error in degrees."""
    m = np.asarray(mask).astype(bool)
    p, t = prediction[m].astype(np.float64), target[m].astype(np.float64)
    if len(p) == 0:
        return {}
    error = np.abs(p[:, :N_BLENDSHAPES] - t[:, :N_BLENDSHAPES])
    return {
        "mae": float(error.mean()),
        "mouth_mae": float(error[:, list(MOUTH_INDICES)].mean()),
        "jaw_open_r": pearson(p[:, JAW_OPEN], t[:, JAW_OPEN]),
        "mouth_close_r": pearson(p[:, MOUTH_CLOSE], t[:, MOUTH_CLOSE]),
        "mouth_funnel_r": pearson(p[:, MOUTH_FUNNEL], t[:, MOUTH_FUNNEL]),
        "jaw_open_amplitude": amplitude(p[:, JAW_OPEN], t[:, JAW_OPEN]),
        "smile_r": float(np.mean([pearson(p[:, i], t[:, i]) for i in SMILES])),
        "translation_mae_cm": float(np.abs(p[:, N_BLENDSHAPES:N_BLENDSHAPES + 3]
                                           - t[:, N_BLENDSHAPES:N_BLENDSHAPES + 3]).mean() * TRANSLATION_SCALE_CM),
        "rotation_error_deg": float(rotation_error_degrees(p[:, N_BLENDSHAPES + 3:], t[:, N_BLENDSHAPES + 3:]).mean()),
        "frames": int(m.sum()),
    }


def best_lag_r(prediction: np.ndarray, truth: np.ndarray, mask: np.ndarray,
               max_lag: int = BEST_LAG_FRAMES) -> tuple[float, int]:
    """(r, lag in frames) at the shift s within +-max_lag that maximises corr(prediction[t + s],
    truth[t]) over known frames: positive s when the prediction comes late. Tells a model that
    has the right shape at the wrong time from one that has neither."""
    best, best_r = 0, -np.inf
    mask = np.asarray(mask, bool)
    for shift in range(-max_lag, max_lag + 1):
        if shift >= 0:
            p, t, m = prediction[shift:], truth[:len(truth) - shift], mask[:len(mask) - shift] & mask[shift:]
        else:
            p, t, m = prediction[:shift], truth[-shift:], mask[-shift:] & mask[:shift]
        r = pearson(p[m], t[m]) if m.sum() > 10 else -np.inf
        if r > best_r:
            best, best_r = shift, r
    return (float(best_r) if np.isfinite(best_r) else 0.0), best


def combine_clip_metrics(per_clip: list[dict[str, float]]) -> dict[str, float]:
    """Frame-weighted mean of each metric over clips (so a 2 s clip counts less than a minute)."""
    per_clip = [c for c in per_clip if c]
    if not per_clip:
        return {}
    keys = dict.fromkeys(k for c in per_clip for k in c if k != "frames")
    combined = {}
    for key in keys:               # a figure some clips lack (no silence in them) averages over the rest
        have = [c for c in per_clip if c.get(key) is not None]
        combined[key] = float(np.average([c[key] for c in have], weights=[c["frames"] for c in have])) if have else None
    return combined | {"frames": int(sum(c["frames"] for c in per_clip))}
