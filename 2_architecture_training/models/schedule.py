"""The learning-rate schedule, as a list of one-cycle phases.

A run plans one phase: EPOCHS epochs of a one-cycle schedule (Smith & Topping 2019; as PyTorch's
OneCycleLR with its defaults: 30 % of the steps rising on a cosine from peak / 25 to the peak,
the rest falling on a cosine to peak / 25 / 1e4). A finished run that is resumed with more epochs
gets a second phase over the extra epochs, a one-cycle of its own whose peak is a fraction of the
first (warm restarts, as in SGDR, Loshchilov & Hutter 2017): the weights leave the first phase's
minimum gently and settle again. The phases travel in the checkpoint, so a resumed run follows
exactly the schedule an uninterrupted run with the same commands would.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

WARMUP_FRACTION = 0.3           # OneCycleLR's pct_start
START_DIVISOR = 25.0            # OneCycleLR's div_factor: the first step's rate is peak / 25
END_DIVISOR = 1e4               # OneCycleLR's final_div_factor: the last is peak / 25 / 1e4


@dataclass
class Phase:
    epochs: int
    peak: float

    def to_dict(self) -> dict:
        return asdict(self)


def one_cycle(step: int, total: int, peak: float) -> float:
    """The rate at `step` (0-based) of a one-cycle phase of `total` steps: OneCycleLR's own
    formula, which ends the rise at step WARMUP_FRACTION * total - 1 and the fall at total - 1."""
    top = WARMUP_FRACTION * total - 1
    start, end = peak / START_DIVISOR, peak / START_DIVISOR / END_DIVISOR
    if step <= top:                                         # cosine rise, start -> peak
        return peak + (start - peak) * (1 + math.cos(math.pi * step / max(top, 1e-9))) / 2
    fraction = min(1.0, (step - top) / max(total - 1 - top, 1e-9))
    return end + (peak - end) * (1 + math.cos(math.pi * fraction)) / 2     # cosine fall, peak -> end


def learning_rate(step: int, steps_per_epoch: int, phases: list[Phase]) -> float:
    """The rate at global optimiser step `step` (0-based) of a run made of `phases`."""
    for phase in phases:
        total = phase.epochs * steps_per_epoch
        if step < total:
            return one_cycle(step, total, phase.peak)
        step -= total
    return phases[-1].peak / START_DIVISOR / END_DIVISOR


def planned_epochs(phases: list[Phase]) -> int:
    return sum(p.epochs for p in phases)
