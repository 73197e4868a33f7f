"""Eye blinks, defined once (inference.py's --blinks): the same schedule in the engine and in the
stream ONNX's graph.

Blinks are not in the sound, so a model trained on video learns their average: on the 12 held-out
clips of the real corpus its eyeBlink scores sit at 0.16-0.22 and never rise, where the videos blink
24 times a minute (the median clip; 28.6 over all 399 s), each blink 167 ms wide at half its height
(IQR 133-200 ms), reaching 0.58 (MediaPipe's score; IQR 0.49-0.70) from eyes open at 0.14
(runs/s49/blink_stats.py in docs/measurements/blinks.md). A face that never blinks reads as a doll's.
So, as Live2D's Cubism SDK does for its models (an automatic eye blink: a mean interval with a random
spread, a closing, a closed and an opening period), the blinks are drawn, not predicted:

- times: after each blink a refractory MIN_GAP_S, then an exponential wait (a Poisson process), so
  that blinks come `rate` a minute on average; the gaps in the videos' longer clips are so (their
  5th percentile 0.46 s, the excess over 0.4 s with a spread about its mean);
- shape: both eyes close along half a cosine in CLOSING_MS, stay CLOSED_MS, open in OPENING_MS
  (160 ms wide at half height at 100 Hz; the videos' median: 167 ms);
- the draw is fixed (BLINK_SEED): CYCLE_BLINKS blinks, then the same again, so a file, a stream in
  any chunks and the stream ONNX (a table of the cycle's 100 Hz envelope and a frame counter in its
  state) blink at the same moments.

Each model frame n gets envelope e = table[n mod len(table)] in [0, 1], and both eyeBlink scores
move towards PEAK from the model's eyes less the blinks' share of them (BLINK_SHARE: a model
predicts the average eye, blinks included): s = max(score - BLINK_SHARE, 0), score' = s + e * (PEAK
- s), before the strength (so `--strength eyeBlinkLeft=1.5,eyeBlinkRight=1.5` makes them deeper,
on a rig whose blink wants more than MediaPipe's 0.58).
"""
from __future__ import annotations

import numpy as np

from .constants import BLENDSHAPE_NAMES, FRAME_RATE

DEFAULT_BLINKS_PER_MINUTE = 24.0   # the real clips' median (28.6 over all of them; 26 in conversation, Bentivoglio 1997)
MIN_BLINKS_PER_MINUTE, MAX_BLINKS_PER_MINUTE = 2.0, 60.0   # other rates (but 0: none) are refused: the cycle's table
#                                 grows as the rate falls (2 a minute: 0.8 MB in the stream ONNX), and above 60 it is a typo
MIN_GAP_S = 0.4                    # no blink sooner than this after the last (the videos' 5th percentile gap: 0.46 s)
CLOSING_MS, CLOSED_MS, OPENING_MS = 100.0, 40.0, 150.0
PEAK = 0.58                        # both eyeBlink scores at a blink's deepest: the videos' median blink (MediaPipe's scale)
BLINK_SHARE = 0.028                # the videos' blinks raise each clip's mean eyeBlink this far above its open eye (median
#                                 over the 33 clips, IQR 0.016-0.037); a model predicts the mean, so its eyes hold the
#                                 blinks' average already: the drawn ones start from its eyes less this
BLINK_SEED = 7                     # of seeds 1-12, the draw whose first 5, 10, 20, 30 and 60 s hold nearest the mean's
#                                 blinks (2, 5, 7, 12, 24 at 24 a minute; seed 4's first blink came after 7 s)
CYCLE_BLINKS = 64                  # blinks drawn before the schedule repeats (2 min 43 s at 24 a minute)
EYES = (BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight"))


def blink_shape() -> np.ndarray:
    """One blink's envelope at 100 Hz, rising from 0 to 1 and back."""
    closing = int(round(CLOSING_MS * FRAME_RATE / 1000))
    closed = int(round(CLOSED_MS * FRAME_RATE / 1000))
    opening = int(round(OPENING_MS * FRAME_RATE / 1000))
    rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, closing + 1) / closing)
    fall = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, opening + 1) / opening)
    return np.concatenate([rise, np.ones(closed), fall])


def blink_table(per_minute: float) -> np.ndarray:
    """(P,) float32: the envelope of a cycle of CYCLE_BLINKS blinks at 100 Hz, `per_minute` a minute
    on average; model frame n blinks by table[n mod P]. The face starts with eyes open."""
    rng = np.random.default_rng(BLINK_SEED)
    shape = blink_shape()
    # CYCLE_BLINKS + 1 waits (the last one and the first make the gap where the cycle repeats), the draw
    # scaled so that they fill CYCLE_BLINKS mean gaps: the cycle blinks exactly `per_minute` a minute
    excess = rng.exponential(1.0, CYCLE_BLINKS + 1)
    spare = CYCLE_BLINKS * 60.0 / per_minute - (CYCLE_BLINKS + 1) * MIN_GAP_S
    waits = MIN_GAP_S + excess * spare / excess.sum()
    gaps = np.maximum(np.round(waits * FRAME_RATE).astype(int), len(shape) + 1)   # a blink ends before the next
    starts = np.cumsum(gaps[:-1])                       # the first after one wait: the eyes start open
    table = np.zeros(int(starts[-1] + gaps[-1]), np.float32)
    for start in starts:
        table[start:start + len(shape)] = shape
    return table


def add_blinks(shapes, envelope):
    """Both eyeBlink columns of `shapes` (n, 52, NumPy or torch, real scores), less BLINK_SHARE (the
    average blink the model's eyes hold), moved towards PEAK by `envelope` (n,) or (n, 1): the one
    formula the engine and the stream ONNX run."""
    on = np.zeros(shapes.shape[1], np.float32)                # 1 in the two eye columns
    on[list(EYES)] = 1.0
    if not isinstance(shapes, np.ndarray):
        import torch
        on = torch.from_numpy(on)
    base = shapes - BLINK_SHARE * on                           # scores are >= 0, so the others stay as they are
    base = base * (base > 0)                                   # at 0 at the least, in NumPy and torch alike
    return base + envelope.reshape(-1, 1) * on * (PEAK - base)


def rest_with_blinks(rest: np.ndarray, per_minute: float) -> np.ndarray:
    """(59,) the model's rest (strength.rest_of) as the strength should scale around it when blinks are
    drawn: its eyes less BLINK_SHARE too, as add_blinks takes it off every frame. So a rest given for
    the eyes (--rest from a video: an open eye) is reached, not undershot by the share, and a gain of
    1 changes nothing."""
    out = np.array(rest, np.float64, copy=True)
    if per_minute:
        out[list(EYES)] = np.maximum(out[list(EYES)] - BLINK_SHARE, 0.0)
    return out


def parse_blinks(text) -> float:
    """--blinks: blinks a minute, 0 for none; ValueError with one line saying what to write."""
    try:
        rate = float(str(text).strip() or 0)
    except ValueError:
        raise ValueError(f"--blinks {text}: not a number; give blinks a minute (e.g. {DEFAULT_BLINKS_PER_MINUTE:g}) "
                         "or 0 for none") from None
    if rate != 0 and not MIN_BLINKS_PER_MINUTE <= rate <= MAX_BLINKS_PER_MINUTE:
        raise ValueError(f"--blinks {rate:g}: give {MIN_BLINKS_PER_MINUTE:g}-{MAX_BLINKS_PER_MINUTE:g} blinks a minute "
                         f"(people talking: about {DEFAULT_BLINKS_PER_MINUTE:g}) or 0 for none")
    return rate


def describe(per_minute: float) -> dict:
    """What an output's header and the ONNX metadata record of the blinks."""
    return {"per_minute": per_minute, "peak": PEAK, "blink_share": BLINK_SHARE, "min_gap_s": MIN_GAP_S,
            "closing_closed_opening_ms": [CLOSING_MS, CLOSED_MS, OPENING_MS], "seed": BLINK_SEED,
            "cycle_frames": int(len(blink_table(per_minute)))}
