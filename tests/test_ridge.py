"""The ridge baseline (voiceface/ridge.py), fitted one clip at a time, against the textbook solution."""
import numpy as np

from voiceface import ridge
from voiceface.ridge import RidgeBaseline, stack_frames


def clips(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    inputs = [rng.normal(size=(int(rng.integers(150, 300)), 80)).astype(np.float32) for _ in range(n)]
    targets = [np.clip(0.2 + 0.05 * x[:, :52] + 0.03 * np.roll(x[:, 3:55], 4, axis=0)
                       + 0.05 * rng.normal(size=(len(x), 52)), 0, 1) for x in inputs]
    masks = [rng.random(len(x)) > 0.1 for x in inputs]
    return inputs, targets, masks


def textbook(inputs, targets, masks, lookahead, strength, leave_out=None):
    """Standardise the stacked frames of the clips kept, solve (X'X + s I) w = X'y, intercept unshrunk."""
    offsets = ridge.context_offsets(lookahead)
    kept = [k for k in range(len(inputs)) if k != leave_out]
    shifted = [ridge.shift_targets(np.asarray(targets[k], np.float64), masks[k], lookahead) for k in range(len(inputs))]
    x = np.concatenate([stack_frames(inputs[k], offsets)[shifted[k][1]] for k in range(len(inputs))]).astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    design = np.concatenate([np.c_[(stack_frames(inputs[k], offsets)[shifted[k][1]] - mean) / std,
                                   np.ones(shifted[k][1].sum())] for k in kept])
    y = np.concatenate([shifted[k][0][shifted[k][1]] for k in kept])
    penalty = np.eye(design.shape[1])
    penalty[-1, -1] = 0
    return mean, std, np.linalg.solve(design.T @ design + strength * penalty, design.T @ y)


def test_the_fit_is_the_textbook_ridge_solution():
    inputs, targets, masks = clips(4)
    model = RidgeBaseline.fit(inputs, targets, masks, lookahead=4, grid=(30.0,))
    mean, std, weights = textbook(inputs, targets, masks, 4, 30.0)
    assert np.allclose(model.mean, mean) and np.allclose(model.std, std)
    assert np.allclose(model.weights, weights, atol=1e-8)


def test_the_strength_is_chosen_by_leaving_one_clip_out():
    inputs, targets, masks = clips(4, seed=1)
    grid = (1.0, 1e3, 1e5)
    model = RidgeBaseline.fit(inputs, targets, masks, lookahead=0, grid=grid)
    offsets = ridge.context_offsets(0)
    for strength in grid:            # the held-out jawOpen r, per clip, averaged — computed the long way
        scores = []
        for k in range(len(inputs)):
            mean, std, weights = textbook(inputs, targets, masks, 0, strength, leave_out=k)
            design = np.c_[(stack_frames(inputs[k], offsets)[masks[k]] - mean) / std, np.ones(masks[k].sum())]
            scores.append(np.corrcoef(design @ weights[:, ridge.JAW_OPEN], targets[k][masks[k], ridge.JAW_OPEN])[0, 1])
        assert np.isclose(model.scores[strength], np.mean(scores), atol=1e-9)
    assert model.strength == max(model.scores, key=model.scores.get)


def test_more_clips_than_folds_are_left_out_in_groups(monkeypatch):
    monkeypatch.setattr(ridge, "MAX_FOLDS", 3)
    inputs, targets, masks = clips(7, seed=2)
    model = RidgeBaseline.fit(inputs, targets, masks, lookahead=2, grid=(1.0, 100.0))
    assert set(model.scores) == {1.0, 100.0} and all(np.isfinite(list(model.scores.values())))
    _, _, weights = textbook(inputs, targets, masks, 2, model.strength)
    assert np.allclose(model.weights, weights, atol=1e-8)       # the final fit uses every clip
