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

A rest (inference.py's --rest) moves that rest to a face the user gives: a video of the speaker
(their face in its pauses, as stage 1.3 takes it), a photo of them at rest, a processed clip folder,
or values (`jawOpen=0.05`). Then

    score' = clip(given rest + gain * (score - rest), 0, 1)

for each blendshape it gives. The model rests where its training clips rest; a person's own mouth
rests open or closed as the person and the camera make it, which the model cannot hear
(ARCHITECTURE.md, "The speaker's own rest").

A strength is written as comma-separated items (`parse_strength`): a number alone sets every
blendshape; `mouth=G` (every jaw* and mouth* shape and cheekPuff), `upper=G` (brows, eyes,
cheekSquint, noseSneer), `pose=G` (the head) and `NAME=G` for one blendshape (MediaPipe's names,
`jawOpen=1.8`). The more particular item wins whatever the order: a name over its region, a region
over the number.

A smoothing (inference.py's --smoothing) is written the same way, each value a time constant in ms
(`mouth=40`), and rides in the same object. It runs on the model's 100 Hz output before the strength,
as a One Euro filter (`one_euro_step`): a still face is low-passed at 1 / (2 pi tau), a moving one
less, so a syllable's opening is not delayed as a plain low-pass delays it. A strictly causal model
flickers (its jaw's frame-to-frame jitter is 1.3-2.2 times the video's for the distance it moves);
`mouth=40` brings that to 1.0-1.4 on the benchmarks, r moving by -0.015 to +0.023 there and on the
LRS2 and GRID recordings (README, "Smoothing"). inference.py smooths the head by default
(DEFAULT_SMOOTHING): the models' heads jitter 2-5 times as much as the video's, and `pose=100` cuts
that by 38-72 % with the head's error unchanged; the mouth is left as the model made it unless asked.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .constants import BLENDSHAPE_NAMES, FRAME_RATE, N_BLENDSHAPES, N_TARGETS

MAX_GAIN = 4.0                  # above this a gain is refused as a likely typo (Audio2Face's strengths stop at 2)
REST_SECONDS = 12.0             # digital silence the rest is read after: past the default model's 10.23 s reach
REGIONS = {
    "mouth": tuple(i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith(("jaw", "mouth")) or n == "cheekPuff"),
    "upper": tuple(i for i, n in enumerate(BLENDSHAPE_NAMES) if n.startswith(("brow", "eye", "cheekSquint", "noseSneer"))),
}
WORDS = ("a number (every blendshape)", "mouth=G", "upper=G", "pose=G", "a blendshape's name=G, e.g. jawOpen=1.5")
MAX_SMOOTHING_MS = 500.0        # a time constant above this is refused as a likely typo (the face would lag by seconds)
SMOOTHING_BETA = 20.0           # Hz per score a second: how far a movement opens the filter (One Euro's beta)
SMOOTHING_SPEED_CUTOFF_HZ = 1.0  # the speed the cutoff follows, low-passed at this (One Euro's d_cutoff, its default)
SMOOTHING_FILTER = (f"One Euro (Casiez, Roussel and Vogel 2012) on the model's 100 Hz output: cutoff 1 / (2 pi tau) + "
                    f"{SMOOTHING_BETA:g} x |speed| Hz, the speed low-passed at {SMOOTHING_SPEED_CUTOFF_HZ:g} Hz")
DEFAULT_SMOOTHING = "pose=100"  # inference.py's --smoothing unless another is given: the models' heads jitter 2-5 times
#                                 the video's from frame to frame; this cuts that by 38-72 % with the head's error
#                                 per axis unchanged within 0.03 deg / 0.007 cm (docs/measurements/smoothing.md)
SMOOTHING_WORDS = ("a time constant in ms for every blendshape (e.g. 40)", "mouth=MS", "upper=MS", "pose=MS",
                   "a blendshape's name=MS, e.g. jawOpen=30")


@dataclass(frozen=True)
class Strength:
    """Gains for the 52 scores (`_neutral`, MediaPipe's score of no expression, is always 1) and
    the head pose, with the text they were given as (`spec`, "" for none); and, with a rest given
    (`with_rest`), where each score's rest goes (`towards`: 52 values, NaN where the model's own
    rest stays) and what it was read from (`rest_spec`)."""
    spec: str
    gains: tuple[float, ...]
    pose: float
    towards: tuple[float, ...] | None = None
    rest_spec: str = ""
    smoothing: tuple[float, ...] | None = None      # (59,) each output's time constant at rest, ms (0: none)
    smoothing_spec: str = ""
    blinks: float = 0.0                               # drawn eye blinks a minute (blinks.py; 0: none)

    @property
    def identity(self) -> bool:
        return (self.pose == 1.0 and all(g == 1.0 for g in self.gains) and self.towards is None
                and self.smoothing is None and not self.blinks)

    def describe(self) -> dict:
        """What an output records: the text given, each score whose gain is not 1, the head's, and
        the rest given (its source and values)."""
        out = {"spec": self.spec, "around": f"the model's face after {REST_SECONDS:g} s of digital silence",
               "blendshapes": {BLENDSHAPE_NAMES[i]: g for i, g in enumerate(self.gains) if g != 1.0},
               "pose": self.pose}
        if self.towards is not None:
            out["rest_to"] = {"spec": self.rest_spec, "blendshapes": {
                BLENDSHAPE_NAMES[i]: round(v, 6) for i, v in enumerate(self.towards) if not math.isnan(v)}}
        if self.smoothing is not None:
            out["smoothing"] = {"spec": self.smoothing_spec, "filter": SMOOTHING_FILTER,
                                "blendshapes_ms": {BLENDSHAPE_NAMES[i]: v for i, v in
                                                   enumerate(self.smoothing[:N_BLENDSHAPES]) if v},
                                "pose_ms": self.smoothing[N_BLENDSHAPES]}
        if self.blinks:
            from .blinks import describe
            out["blinks"] = describe(self.blinks)
        return out


NONE = Strength("", (1.0,) * N_BLENDSHAPES, 1.0)


def parse_face_items(spec: str, option: str, what: str, high: float, limits: str, words: tuple) -> tuple:
    """The items of a face setting (--strength, --smoothing): a number alone for every blendshape,
    `mouth=V`, `upper=V`, `pose=V` and `NAME=V`, each V `what` (a gain, a time constant) in [0,
    high] (`limits` says so). Returns (every blendshape's value or None, {region: value}, {score
    index: value}, the pose's value or None); ValueError with one line naming what is wrong and what
    to write (`words`)."""
    lower = {n.lower(): i for i, n in enumerate(BLENDSHAPE_NAMES) if not n.startswith("_")}
    everything, regions, names, pose, seen = None, {}, {}, None, set()
    for item in (part.strip() for part in spec.split(",") if part.strip()):     # a stray comma is no item
        key, _, value = item.rpartition("=")
        key = key.strip().lower()
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{option} {spec}: {item!r} is not {what}; write {', '.join(words)}") from None
        if not math.isfinite(number) or not 0.0 <= number <= high:
            raise ValueError(f"{option} {spec}: {item!r}: {limits}")
        if key in seen:
            raise ValueError(f"{option} {spec}: {key or 'the number alone'} is given twice; give it once")
        seen.add(key)
        if not key:
            everything = number
        elif key in REGIONS:
            regions[key] = number
        elif key == "pose":
            pose = number
        elif key in lower:
            names[lower[key]] = number
        else:
            raise ValueError(f"{option} {spec}: {item.split('=')[0].strip()!r} is not a blendshape or region; "
                             f"write {', '.join(words)}")
    return everything, regions, names, pose


def per_score(default: float, everything, regions: dict, names: dict) -> np.ndarray:
    """(52,) a value for each score from parse_face_items' parts, the more particular winning; `_neutral`
    keeps `default`."""
    values = np.full(N_BLENDSHAPES, float(default))
    if everything is not None:
        values[1:] = everything
    for region, value in regions.items():
        values[list(REGIONS[region])] = value
    for index, value in names.items():
        values[index] = value
    return values


def parse_strength(spec: str) -> Strength:
    """The Strength `spec` names (see the module docstring); ValueError with one line saying what
    is wrong and what to write instead."""
    spec = str(spec or "").strip()
    if not spec:
        return NONE
    everything, regions, names, pose = parse_face_items(
        spec, "--strength", "a gain", MAX_GAIN, f"a gain is between 0 (no movement) and {MAX_GAIN:g}; 1 leaves the "
        "face as the model made it", WORDS)
    gains = per_score(1.0, everything, regions, names)
    return Strength(spec, tuple(float(g) for g in gains), 1.0 if pose is None else float(pose))


# --- smoothing (--smoothing) ----------------------------------------------------------------------
def parse_smoothing(spec: str) -> tuple[float, ...] | None:
    """(59,) time constants in ms (the 52 scores, then the head's 7) from `spec`, written as a
    strength is (a number for every blendshape, mouth=, upper=, pose=, NAME=); None for none.
    ValueError with one line saying what to write instead."""
    spec = str(spec or "").strip()
    if not spec:
        return None
    everything, regions, names, pose = parse_face_items(
        spec, "--smoothing", "a time constant", MAX_SMOOTHING_MS,
        f"a time constant is between 0 (none) and {MAX_SMOOTHING_MS:g} ms", SMOOTHING_WORDS)
    taus = np.concatenate([per_score(0.0, everything, regions, names),
                           np.full(N_TARGETS - N_BLENDSHAPES, 0.0 if pose is None else pose)])
    return tuple(float(t) for t in taus) if taus.any() else None


def with_smoothing(strength: Strength, spec: str) -> Strength:
    """`strength` with the smoothing `spec` names (parse_smoothing; "" for none)."""
    from dataclasses import replace
    taus = parse_smoothing(spec)
    return replace(strength, smoothing=taus, smoothing_spec=str(spec or "").strip() if taus else "")


def with_blinks(strength: Strength, text) -> Strength:
    """`strength` with drawn eye blinks, `text` a minute (blinks.parse_blinks; 0 or "" for none)."""
    from dataclasses import replace

    from .blinks import parse_blinks
    return replace(strength, blinks=parse_blinks(text))


def smoothing_constants(strength: Strength) -> tuple[np.ndarray, np.ndarray]:
    """(59,) each output's cutoff at rest in Hz, 1 / (2 pi tau), and (59,) 1 where it is smoothed."""
    taus = np.asarray(strength.smoothing if strength.smoothing is not None else np.zeros(N_TARGETS), np.float64)
    on = (taus > 0).astype(np.float64)
    return 1000.0 / (2 * np.pi * np.where(taus > 0, taus, 1.0)), on


def one_euro_step(x, value, speed, cutoff, on):
    """One 10 ms step of the smoothing filter on NumPy arrays or torch tensors alike (so that the
    engine and the stream ONNX run the same arithmetic): x the model's output now, value and speed
    the filter's last (both x and 0 on a stream's first frame), cutoff and on smoothing_constants'.
    Returns (the output, smoothed; its new speed). A still face is low-passed at `cutoff`; a moving
    one opens the filter by SMOOTHING_BETA Hz per score a second, so a syllable's opening passes
    with little delay (One Euro: Casiez, Roussel and Vogel, CHI 2012; one of the filters of MediaPipe's
    LandmarksSmoothingCalculator, mediapipe/calculators/util/landmarks_smoothing_calculator.proto)."""
    step = 2 * math.pi / FRAME_RATE
    speed_gain = step * SMOOTHING_SPEED_CUTOFF_HZ / (1 + step * SMOOTHING_SPEED_CUTOFF_HZ)
    speed = speed + speed_gain * ((x - value) * FRAME_RATE - speed)
    k = step * (cutoff + SMOOTHING_BETA * abs(speed))
    smoothed = value + k / (1 + k) * (x - value)
    return on * smoothed + (1 - on) * x, speed


def smooth_frames(values: np.ndarray, strength: Strength, state: tuple | None = None) -> tuple[np.ndarray, tuple]:
    """(T, 59) model outputs (100 Hz) through the strength's smoothing, carrying `state` (the last
    value and speed; None at a stream's start) from the last call. Returns (smoothed, state)."""
    values = np.asarray(values, np.float64)
    if strength.smoothing is None or not len(values):
        return values, state
    cutoff, on = smoothing_constants(strength)
    value, speed = state if state is not None else (values[0], np.zeros(values.shape[1]))
    out = np.empty_like(values)
    for t in range(len(values)):
        value, speed = one_euro_step(values[t], value, speed, cutoff, on)
        out[t] = value
    return out, (value, speed)


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


def scale_from_rest(values, rest, gains, pose_gain, towards=None):
    """The strength's arithmetic on torch tensors, so that the engine and the ONNX graph run the
    same code: values (N, 59) in real units (scores, translation in cm, unit quaternion), rest (59,),
    gains (52,), pose_gain a float, towards (52,) the scores' rest after (`rest_target`; None: the
    model's own). Returns (N, 59)."""
    import torch
    towards = rest[:N_BLENDSHAPES] if towards is None else towards
    shapes = torch.clamp(towards + gains * (values[:, :N_BLENDSHAPES] - rest[:N_BLENDSHAPES]), 0.0, 1.0)
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
                          torch.tensor(strength.gains, dtype=torch.float64), strength.pose,
                          torch.from_numpy(rest_target(strength, rest)))
    return out.numpy()


def rest_for(strength: Strength, model, checkpoint: dict) -> np.ndarray:
    """(59,) the rest `strength` scales around: the model's (rest_of), with drawn blinks its eyes less
    the blinks' share (blinks.rest_with_blinks). The engine, the stream ONNX and its check all take it."""
    from .blinks import rest_with_blinks
    return rest_with_blinks(rest_of(model, checkpoint), strength.blinks)


def rest_target(strength: Strength, rest: np.ndarray) -> np.ndarray:
    """(52,) where each score's rest goes: the rest given (`with_rest`), else the model's own."""
    own = np.asarray(rest, np.float64)[:N_BLENDSHAPES]
    if strength.towards is None:
        return own.copy()
    given = np.asarray(strength.towards, np.float64)
    return np.where(np.isnan(given), own, given)


def strength_metadata(strength: Strength, rest: np.ndarray | None) -> str:
    """The stream ONNX's record of the strength inside it (a JSON string; "" for none)."""
    if strength.identity:
        return ""
    return json.dumps(strength.describe() | {"rest": [round(float(v), 6) for v in rest]})


# --- a rest the user gives (--rest) ---------------------------------------------------------------
MIN_REST_SECONDS = 0.3          # of a video's face without voice: fewer, and its pauses are too short to take a rest from
ONE_FRAME = ("; one frame is a less sure rest than a video's pauses (the first frames of ten GRID recordings, "
             "before each sentence, read jawOpen 0.01-0.43)")
REST_READ_SECONDS = 120.0       # of a video, the first this many are read for its rest (MediaPipe: 0.4 s a second of video)
REST_MARGIN_S = 0.1             # a pause's frames this near a voiced frame are not taken (the mouth closing, sync left)
REST_WORDS = ("a video of the speaker with pauses in the speech", "a photo of the face at rest",
              "a processed clip folder (stage 1.1 and 1.2 outputs) or its blendshapes_and_pose.json",
              "NAME=V for one blendshape, e.g. jawOpen=0.05")


BENCHMARK_RESTS = ("", "speaker")   # strength_check.py's and jaw_tracks.py's --rest: none, or each clip's speaker's


def benchmark_rest_problem(rest: str, does: str) -> str:
    """The line refusing strength_check.py's or jaw_tracks.py's --rest (`does`: what speaker does
    there), or "" for one of BENCHMARK_RESTS."""
    if rest in BENCHMARK_RESTS:
        return ""
    return f"--rest {rest}: give speaker ({does}), or leave it out"


def with_rest(strength: Strength, towards: np.ndarray | None, spec: str) -> Strength:
    """`strength` with its rest moved to `towards` ((52,), NaN where the model's stays; None: none)."""
    from dataclasses import replace
    if towards is None:
        return replace(strength, towards=None, rest_spec="")
    towards = np.array(towards, np.float64)
    towards[0] = np.nan                 # _neutral, MediaPipe's score of no expression, is the model's, as its gain is 1
    return replace(strength, towards=tuple(float(v) for v in towards), rest_spec=str(spec))


def parse_rest_values(spec: str) -> np.ndarray:
    """(52,) from `NAME=V,...` (V in [0, 1], MediaPipe's names, any case), NaN for the blendshapes not
    named; ValueError with one line saying what to write instead."""
    lower = {n.lower(): i for i, n in enumerate(BLENDSHAPE_NAMES) if not n.startswith("_")}
    values = np.full(N_BLENDSHAPES, np.nan)
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        key, _, value = item.rpartition("=")
        index = lower.get(key.strip().lower())
        if index is None:
            raise ValueError(f"--rest {spec}: {key.strip() or item!r} is neither a file nor a blendshape's name; "
                             f"give {', '.join(REST_WORDS)}")
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"--rest {spec}: {item!r}: give the score at rest as a number between 0 and 1")
        if not np.isnan(values[index]):
            raise ValueError(f"--rest {spec}: {BLENDSHAPE_NAMES[index]} is given twice; give it once")
        values[index] = score
    if np.isnan(values).all():
        raise ValueError(f"--rest {spec}: no value; give {', '.join(REST_WORDS)}")
    return values


def rest_from_spec(spec: str, face_model=None) -> tuple[np.ndarray | None, str]:
    """(the (52,) rest --rest names or None for none, how it was read). A path (that exists) is
    read by `face_at_rest`; text with '=' by `parse_rest_values`. ValueError (bad text) or
    voiceface.errors.InputError (a file that gives no rest), each one line."""
    from pathlib import Path
    spec = str(spec or "").strip()
    if not spec:
        return None, ""
    path = Path(spec).expanduser()
    if path.exists():
        values, how = face_at_rest(path, face_model)
        return values, f"{spec}: {how}"
    if "=" not in spec:
        raise ValueError(f"--rest {spec}: no such file or folder; give {', '.join(REST_WORDS)}")
    return parse_rest_values(spec), spec


def face_at_rest(path, face_model=None) -> tuple[np.ndarray, str]:
    """(52,) a face at rest read from `path`, and how: a processed clip folder's (or its stage 1.1
    track's) or a video's face in its pauses, a photo's, a silent video's or a stage 1.1 track's
    without its sound median face. InputError, naming the file, where none can be read.

    The pauses are the voice activity's, REST_MARGIN_S away from any voice, on the video's clock
    put in sync with the sound as stage 1.3 puts a clip (voiceface/sync.py's estimate, when it is
    confident): a web video's sound is often 0.1-0.4 s off its picture, and pauses read without
    sync catch the mouth still talking (Obama's clips read jawOpen 0.12-0.16 at rest that way, where
    his video shows 0.09-0.11 in the pauses). The face there is dataset.rest_face's median."""
    from pathlib import Path

    from scipy.ndimage import maximum_filter1d

    from .dataset import has_both_outputs, interpolate_targets, read_processed_clip, rest_face
    from .errors import InputError
    from .formats import BLENDSHAPES_FILENAME, read_blendshapes_json
    from .sync import estimate_clip_lag
    path = Path(path)
    if path.name == BLENDSHAPES_FILENAME and has_both_outputs(path.parent):
        path = path.parent                               # a processed clip's track: read with its sound
    if path.suffix.lower() == ".json" and not path.is_dir():
        track = read_blendshapes_json(path)              # a stage 1.1 track without its sound: its median face
        return (np.median(track.blendshapes[track.has_face], axis=0).astype(np.float64),
                f"no sound: the median face of {int(track.has_face.sum())} frame(s)")
    if path.is_dir():
        if not has_both_outputs(path):
            raise InputError(f"{path}: a folder, but not a processed clip (stage 1.1's and 1.2's outputs); give a "
                             "video or photo of the face, or a processed clip folder")
        track, audio = read_processed_clip(path)
        times_s, scores, pose, has_face = track.times_ms / 1000.0, track.blendshapes, track.pose, track.has_face
        vad, mel, audio_times = audio.vad, audio.mel, audio.meta["audio_start_s"] + audio.times
    else:
        from .face_model import DEFAULT_FACE_MODEL, ensure_face_model
        from .landmarks import extract_blendshapes_and_pose
        from .video import has_sound
        _, times_ms, scores, pose = extract_blendshapes_and_pose(path, ensure_face_model(face_model or DEFAULT_FACE_MODEL),
                                                                 max_faces=1, progress=True, max_seconds=REST_READ_SECONDS)
        times_s, has_face = np.asarray(times_ms) / 1000.0, ~np.isnan(scores).any(axis=1)
        vad = mel = audio_times = None
        if has_sound(path):
            from .audio import extract_file_features, frame_times
            source, features = extract_file_features(path)
            vad, mel, audio_times = features.vad, features.mel, source.start_s + frame_times(len(features))
    if vad is None:
        frames = int(has_face.sum())
        return (np.median(np.asarray(scores)[has_face], axis=0).astype(np.float64),
                f"no sound: the median face of {frames} frame(s)" + (ONE_FRAME if frames == 1 else ""))
    scores, pose = np.asarray(scores), np.asarray(pose)
    targets, mask = interpolate_targets(audio_times, times_s, scores, pose, has_face)
    estimate = estimate_clip_lag(targets, mel, mask) if mask.sum() else None
    shift = estimate.lag_s if estimate is not None and estimate.confident else 0.0
    if shift:
        targets, mask = interpolate_targets(audio_times + shift, times_s, scores, pose, has_face)
    near_voice = maximum_filter1d(np.asarray(vad, np.uint8), 2 * round(REST_MARGIN_S * FRAME_RATE) + 1)
    quiet = int((mask & (near_voice == 0)).sum())
    rest = rest_face(targets, mask, near_voice) if quiet >= MIN_REST_SECONDS * FRAME_RATE else None
    if rest is None:
        raise InputError(f"{path}: under {MIN_REST_SECONDS:g} s of the face at least {REST_MARGIN_S * 1000:g} ms from "
                         "any voice; give a recording with pauses in the speech, or a photo of the face at rest")
    synced = f"its sound moved {shift * 1000:+.0f} ms to the picture" if shift else "its sound as it is"
    read = f" of its first {REST_READ_SECONDS:g} s" if not path.is_dir() and audio_times[-1] - audio_times[0] > \
        REST_READ_SECONDS + 1 else ""
    return rest.astype(np.float64), f"the face in {quiet / FRAME_RATE:.1f} s of pauses{read} ({synced})"


def speaker_rests(speaker_manifest, processed) -> dict:
    """{clip: (52,) its speaker's rest, the median of the rests read (`face_at_rest`) from their other
    clips in the processed folder} for every clip of the speaker manifest whose speaker has another
    clip there with one; never read from the clip itself (strength_check.py and jaw_tracks.py's
    --rest speaker: what inference.py --rest does with another of the speaker's videos)."""
    from pathlib import Path

    from .dataset import has_both_outputs, speakers_from_manifest
    from .errors import InputError
    speakers, processed, faces = speakers_from_manifest(speaker_manifest), Path(processed), {}
    for clip in speakers:
        if has_both_outputs(processed / clip):
            try:
                faces[clip] = face_at_rest(processed / clip)[0]
            except InputError:
                pass                     # no pauses to read a rest from: this clip gives none
    return {clip: np.median([faces[o] for o in faces if o != clip and speakers[o] == speakers[clip]], axis=0)
            for clip in speakers if any(o != clip and speakers[o] == speakers[clip] for o in faces)}
