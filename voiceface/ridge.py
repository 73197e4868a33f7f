"""The linear baseline, defined once: ridge regression from stacked input frames to the 52
blendshapes. The evaluation scores it beside the TCN on the same inputs and look-ahead, the sync
module's second pass predicts with it, and `linear_probe.py` reports it.

Context. An output at frame t sees the input frames t - PAST_FRAMES - L ... t (every STEP_FRAMES),
and with a look-ahead of L frames it is the face of t - L: the face at u is read from the audio of
[u - PAST, u + L]. Strictly causal like the TCN, and with the same look-ahead.

Fitting. Features are standardised on the training frames; the ridge strength is chosen from
RIDGE_GRID by leave-one-clip-out over the training clips (jawOpen r, per clip, averaged), from
per-clip Gram matrices, so choosing costs one Cholesky solve per clip and strength (of the jawOpen
column alone) and one stacking of each clip's frames; with more than MAX_FOLDS clips, one of
MAX_FOLDS groups of clips is left out instead. The clips are stacked one at a time, so
memory stays at one clip's stacked frames and the Gram matrices, however long the data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .constants import N_BLENDSHAPES
from .metrics import JAW_OPEN, Moments

PAST_FRAMES = 20                # 200 ms of audio before the face's time (the linear measurement)
STEP_FRAMES = 2                 # every 20 ms: 11 frames x 80 bins = 880 features causally
RIDGE_GRID = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)   # real clips, 27 training: 1e6 peaks (held-out r 0.236; 1e7 0.205)
MAX_FOLDS = 40                  # more training clips than this: leave one of 40 groups of them out


def context_offsets(lookahead: int, past: int = PAST_FRAMES, step: int = STEP_FRAMES) -> np.ndarray:
    """Input offsets relative to the output frame, oldest first, ending at 0 (causal)."""
    return -np.arange(0, past + lookahead + 1, step)[::-1]          # e.g. -20, -18, ..., 0


def stack_frames(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(T, F) -> (T, F * len(offsets)): frame t holds x[t + o] for each offset (the first frame
    repeated before the start, as a stream that starts in silence would see its first sound)."""
    index = np.clip(np.arange(len(x))[:, None] + offsets[None, :], 0, len(x) - 1)   # (T, n_offsets)
    return x[index].reshape(len(x), -1)


def shift_targets(targets: np.ndarray, mask: np.ndarray, lookahead: int) -> tuple[np.ndarray, np.ndarray]:
    """What output frame t must say with a look-ahead: the face at t - lookahead (frames before a
    clip's start are unknown, so masked)."""
    if lookahead == 0:
        return targets, mask
    shifted = np.concatenate([np.repeat(targets[:1], lookahead, axis=0), targets[:-lookahead]])
    known = np.concatenate([np.zeros(lookahead, bool), mask[:-lookahead]])
    return shifted, known


def solve_shrunk(gram: np.ndarray, strength: float, right: np.ndarray) -> np.ndarray:
    """(gram + strength * I') w = right, where I' is the identity but for the intercept (the last
    row and column, not shrunk). The matrix is symmetric positive definite, so a Cholesky
    factorisation solves it; one too ill-conditioned for that is solved by LU as before."""
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    def shrunk() -> np.ndarray:                 # a new one each time: the factorisation overwrites it
        matrix = gram.copy()
        features = np.arange(len(gram) - 1)
        matrix[features, features] += strength
        return matrix

    try:
        return cho_solve(cho_factor(shrunk(), overwrite_a=True, check_finite=False), right, check_finite=False)
    except LinAlgError:
        return np.linalg.solve(shrunk(), right)


@dataclass
class RidgeBaseline:
    """Blendshapes (52, in [0, 1]) from stacked inputs by ridge regression."""
    lookahead: int
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    weights: np.ndarray | None = None       # (features + 1, 52)
    strength: float = 0.0
    scores: dict = field(default_factory=dict)   # strength -> held-out jawOpen r it scored (when chosen)

    @staticmethod
    def fit(inputs: list[np.ndarray], targets: list[np.ndarray], masks: list[np.ndarray], lookahead: int,
            grid: tuple[float, ...] = RIDGE_GRID, offsets: np.ndarray | None = None) -> "RidgeBaseline":
        """inputs: per clip (T, 80) as the model sees them; targets (T, >= 52) normalised; masks (T,);
        offsets: the input frames read, relative to the output frame (default: context_offsets)."""
        offsets = context_offsets(lookahead) if offsets is None else np.asarray(offsets, int)
        model = RidgeBaseline(lookahead, offsets)
        clips = [(np.asarray(x, np.float32), *shift_targets(np.asarray(y, np.float64)[:, :N_BLENDSHAPES],
                                                           np.asarray(m, bool), lookahead))
                 for x, y, m in zip(inputs, targets, masks)]
        # one clip's stacked frames at a time (an hour of audio stacked at once would take 2 GB):
        # first the features' means and spreads, then per fold the Gram matrices
        features = Moments()
        for x, _, known in clips:
            features.add(stack_frames(x, offsets)[known])
        model.mean, model.std = features.mean(), np.maximum(features.std(), 1e-6)
        folds = min(len(clips), MAX_FOLDS)          # leave one clip out, or one of MAX_FOLDS groups of clips
        grams, cross = [0.0] * folds, [0.0] * folds
        for index, (x, y, known) in enumerate(clips):
            design = model.design(x)[known]
            grams[index % folds] = grams[index % folds] + design.T @ design
            cross[index % folds] = cross[index % folds] + design.T @ y[known]
        gram, total = sum(grams), sum(cross)
        best, best_score = grid[0], -np.inf
        if folds > 1 and len(grid) > 1:
            # each fold's jawOpen weights under every strength, (features + 1, strengths): one Cholesky
            # factorisation per fold and strength (half an LU's work) and the jaw column alone solved;
            # then each clip's design is made once and scored under every strength in one product
            jaws = []
            for k in range(folds):
                held_in, right = gram - grams[k], (total - cross[k])[:, JAW_OPEN]
                jaws.append(np.stack([solve_shrunk(held_in, strength, right) for strength in grid], axis=1))
            scores = [[] for _ in grid]
            for index, (x, y, known) in enumerate(clips):
                predictions, truth = model.design(x)[known] @ jaws[index % folds], y[known][:, JAW_OPEN]
                if truth.std() <= 1e-9:
                    continue
                for column, prediction in enumerate(predictions.T):
                    if prediction.std() > 1e-9:
                        scores[column].append(np.corrcoef(prediction, truth)[0, 1])
            for strength, held_out in zip(grid, scores):
                score = float(np.mean(held_out)) if held_out else -np.inf
                model.scores[strength] = score
                if score > best_score:
                    best, best_score = strength, score
        model.strength = best
        model.weights = solve_shrunk(gram, best, total)
        return model

    def per_frame_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The fit as weights on the unstandardised frames: ((len(offsets), 80, 52), each offset's,
        oldest first; (52,) intercept), so that output = intercept + sum over offsets of
        x[t + offset] @ weight — the form of the model's linear skip."""
        scaled = self.weights[:-1] / self.std[:, None]                    # (features, 52)
        intercept = self.weights[-1] - self.mean @ scaled
        return scaled.reshape(len(self.offsets), -1, scaled.shape[1]), intercept

    def design(self, x: np.ndarray) -> np.ndarray:
        """(T, 80) inputs of one clip -> (T, features + 1): stacked, standardised, and a 1 for the intercept."""
        return np.c_[(stack_frames(np.asarray(x, np.float32), self.offsets) - self.mean) / self.std, np.ones(len(x))]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(T, 80) inputs of one clip from its start -> (T, 52) blendshapes in [0, 1]; output t is
        the face of t - lookahead."""
        return np.clip(self.design(x) @ self.weights, 0.0, 1.0)
