"""Expression strength, defined once: how far the face moves from its rest, per region of the face,
per blendshape and for the head (inference.py's --strength, the stream ONNX, the Live Link packets,
the CSV and the preview all take the engine's frames, so all of them get it).

A trained model's mouth moves less than the video's on voices it never heard: on the eight LRS2 and
ten GRID recordings of ARCHITECTURE.md's "Recordings the benchmarks never saw" its jaw moves at
0.41-0.47 of the video's spread (a model that is unsure of a new voice hedges towards the middle,
which is also what gives it the least error). Audio2Face-3D gives its users the same kind of
control (lowerFaceStrength and upperFaceStrength, 0-2, and a multiplier per blendshape). Here each
value moves from the model's own rest — its face after REST_SECONDS of digital silence — by
`gain` times as much:

    score' = clip(rest + gain * (score - rest), 0, 1)
    translation' = rest + gain * (translation - rest)
    rotation' = slerp(rest rotation, rotation, gain)      # the turn away from rest, gain times as far

so silence stays exactly where it was at any strength, and a gain of 1 changes nothing.

A strength is written as comma-separated items (`parse_strength`): a number alone sets every
blendshape; `mouth=G` (every jaw* and mouth* shape and cheekPuff), `upper=G` (brows, eyes,
cheekSquint, noseSneer), `pose=G` (the head) and `NAME=G` for one blendshape (MediaPipe's names,
`jawOpen=1.8`). The more particular item wins whatever the order: a name over its region, a region
over the number.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .constants import BLENDSHAPE_NAMES, N_BLENDSHAPES, N_TARGETS

MAX_GAIN = 4.0                  # above this a gain is refused as a likely typo (Audio2Face's strengths stop at 2)
REST_SECONDS = 12.0             # digital silence the rest is read after: past the default model's 10.23 s reach
REGIONS = {
    "mouth": tuple(i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith(("jaw", "mouth")) or n == "cheekPuff"),
    "upper": tuple(i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith(("brow", "eye", "cheekSquint", "noseSneer"))),
}
WORDS = ("a number (every blendshape)", "mouth=G", "upper=G", "pose=G", "a blendshape's name=G, e.g. jawOpen=1.5")


@dataclass(frozen=True)
class Strength:
    """Gains for the 52 scores (`_neutral`, MediaPipe's score of no expression, is always 1) and
    the head pose, with the text they were given as (`spec`, "" for none)."""
    spec: str
    gains: tuple[float, ...]
    pose: float

    @property
    def identity(self) -> bool:
        return self.pose == 1.0 and all(g == 1.0 for g in self.gains)

    def describe(self) -> dict:
        """What an output records: the text given, each score whose gain is not 1, the head's."""
        return {"spec": self.spec, "around": f"the model's face after {REST_SECONDS:g} s of digital silence",
                "blendshapes": {BLENDSHAPE_NAMES[i]: g for i, g in enumerate(self.gains) if g != 1.0},
                "pose": self.pose}


NONE = Strength("", (1.0,) * N_BLENDSHAPES, 1.0)


def parse_strength(spec: str) -> Strength:
    """The Strength `spec` names (see the module docstring); ValueError with one line saying what
    is wrong and what to write instead."""
    spec = str(spec or "").strip()
    if not spec:
        return NONE
    lower = {n.lower(): i for i, n in enumerate(BLENDSHAPE_NAMES) if not n.startswith("_")}
    everything, regions, names, pose, seen = None, {}, {}, 1.0, set()
    for item in (part.strip() for part in spec.split(",") if part.strip()):     # a stray comma is no item
        key, _, value = item.rpartition("=")
        key = key.strip().lower()
        try:
            gain = float(value)
        except ValueError:
            raise ValueError(f"--strength {spec}: {item!r} is not a gain; write {', '.join(WORDS)}") from None
        if not math.isfinite(gain) or not 0.0 <= gain <= MAX_GAIN:
            raise ValueError(f"--strength {spec}: {item!r}: a gain is between 0 (no movement) and {MAX_GAIN:g}; "
                             "1 leaves the face as the model made it")
        if key in seen:
            raise ValueError(f"--strength {spec}: {key or 'the number alone'} is given twice; give it once")
        seen.add(key)
        if not key:
            everything = gain
        elif key in REGIONS:
            regions[key] = gain
        elif key == "pose":
            pose = gain
        elif key in lower:
            names[lower[key]] = gain
        else:
            raise ValueError(f"--strength {spec}: {item.split('=')[0].strip()!r} is not a blendshape or region; "
                             f"write {', '.join(WORDS)}")
    gains = np.ones(N_BLENDSHAPES)
    if everything is not None:
        gains[1:] = everything
    for region, gain in regions.items():
        gains[list(REGIONS[region])] = gain
    for index, gain in names.items():
        gains[index] = gain
    return Strength(spec, tuple(float(g) for g in gains), float(pose))


def rest_of(model, checkpoint: dict) -> np.ndarray:
    """(59,) the model's face, in real units, after REST_SECONDS of digital silence (or its whole
    reach of it, when that is longer): what a strength scales around. Kept on the model object for
    the inputs it was read with (20 ms a time on two cores; a folder of files asks once a file)."""
    from .engine import Animator, Frames
    key = (checkpoint["input_mode"], checkpoint.get("formants") is not None)
    kept = model.__dict__.setdefault("_voiceface_rest", {})
    if key not in kept:
        reach = getattr(model, "receptive_field", None)
        seconds = max(REST_SECONDS, (reach or 0) / 100 + 1.0)
        animator = Animator(model, checkpoint, 100.0, stream=False)
        frames = Frames.concatenate([animator.push(np.zeros(int(seconds * 16000), np.float32)), animator.finish()])
        kept[key] = np.concatenate([frames.blendshapes[-1], frames.pose[-1]]).astype(np.float64)
    return kept[key].copy()


def scale_from_rest(values, rest, gains, pose_gain):
    """The strength's arithmetic on torch tensors, so that the engine and the ONNX graph run the
    same code: values (N, 59) in real units (scores, translation in cm, unit quaternion), rest (59,),
    gains (52,), pose_gain a float. Returns (N, 59)."""
    import torch
    shapes = torch.clamp(rest[:N_BLENDSHAPES] + gains * (values[:, :N_BLENDSHAPES] - rest[:N_BLENDSHAPES]), 0.0, 1.0)
    translation = rest[N_BLENDSHAPES:N_BLENDSHAPES + 3] + pose_gain * (values[:, N_BLENDSHAPES:N_BLENDSHAPES + 3]
                                                                      - rest[N_BLENDSHAPES:N_BLENDSHAPES + 3])
    q0, q1 = rest[N_BLENDSHAPES + 3:N_TARGETS][None], values[:, N_BLENDSHAPES + 3:N_TARGETS]
    dot = (q0 * q1).sum(dim=1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)                      # the shorter way round
    theta = torch.acos(torch.clamp(dot.abs(), max=1.0))
    sine = torch.sin(theta)
    near = sine < 1e-6                                      # no turn from rest to speak of: lerp is exact enough
    safe = torch.where(near, torch.ones_like(sine), sine)
    w0 = torch.where(near, 1.0 - pose_gain * torch.ones_like(sine), torch.sin((1.0 - pose_gain) * theta) / safe)
    w1 = torch.where(near, pose_gain * torch.ones_like(sine), torch.sin(pose_gain * theta) / safe)
    rotation = w0 * q0 + w1 * q1
    rotation = rotation / torch.clamp(rotation.norm(dim=1, keepdim=True), min=1e-12)
    return torch.cat([shapes, translation, rotation], dim=1)


def apply_strength(values: np.ndarray, strength: Strength, rest: np.ndarray) -> np.ndarray:
    """(N, 59) real-unit frames with `strength` applied around `rest` (unchanged for none)."""
    import torch
    if strength.identity or not len(values):
        return values
    out = scale_from_rest(torch.from_numpy(np.asarray(values, np.float64)), torch.from_numpy(rest),
                          torch.tensor(strength.gains, dtype=torch.float64), strength.pose)
    return out.numpy()


def strength_metadata(strength: Strength, rest: np.ndarray | None) -> str:
    """The stream ONNX's record of the strength inside it (a JSON string; "" for none)."""
    if strength.identity:
        return ""
    return json.dumps(strength.describe() | {"rest": [round(float(v), 6) for v in rest]})
