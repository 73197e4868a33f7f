"""The inference engine, defined once: audio in (a file, or chunks as they arrive), the trained
TCN at 100 Hz, blendshapes and head pose out at an animation frame rate.

One class does both: `Animator.push(samples)` takes 16 kHz audio of any chunk size, runs the shared
front-end, input normalisation and the model with each layer's left context kept as state, and
returns every output frame whose audio has arrived; `finish()` emits the rest. Offline inference
is the same object fed in 10 s blocks, so a long file runs in bounded memory and equals the stream.

Output frame k is at time k / fps. It takes the model frame stamped at or just before that time
(model frame i is stamped (i + 1) * 10 ms, the end of its audio window); with a look-ahead of L
frames, model frame i is the face of (i + 1 - L) * 10 ms, so frame k is emitted once audio up to
k / fps + L * 10 ms has arrived, and still carries its true time k / fps.

A face delay of D frames (`delay_frames`, inference.py's --face-delay-ms) moves the face D * 10 ms
later against the sound: frame k takes the model frame D before the one above. A model learns
its training corpus's lead of the mouth over the sound; on recordings synchronised otherwise its
mouth comes early or late by the difference (ARCHITECTURE.md, "Recordings the benchmarks never
saw"), and the delay puts that right without retraining. A positive delay costs no latency; a
negative one waits D * 10 ms longer for its audio, as a look-ahead does.

A strength (`strength`, inference.py's --strength; voiceface/strength.py) scales how far each
frame moves from the model's face in silence, after the frames are chosen, so a stream still equals
the file. Its smoothing (inference.py's --smoothing) runs on the model's 100 Hz output as it comes,
its state carried from push to push, before the frames are chosen. Its drawn eye blinks
(inference.py's --blinks; voiceface/blinks.py) go on each chosen frame by its model frame's number,
before the strength, so they come at the same moments in a file and in a stream.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import REPO_ROOT
from .audio import AudioFrontEnd, open_audio
from .constants import FRAME_RATE, N_BLENDSHAPES, N_MELS, OUTPUT_FPS, SAMPLE_RATE, WIN_LENGTH
from .dataset import ModelInputs, denormalize_targets
from .errors import FormatError

FILE_BLOCK_SECONDS = 10.0       # offline: audio is fed to the engine in blocks of this length


def models_package():
    """The model code of stage 2 (2_architecture_training/models), importable from anywhere."""
    folder = str(REPO_ROOT / "2_architecture_training")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import models
    import models.checkpoint
    return models


def load_model(checkpoint_path: str | Path, device: str = "cpu", extra_inputs: bool = False):
    """(model, checkpoint dict), refusing damaged or mismatched checkpoints (FormatError): among
    them models trained with formant channels of other constants, and models that read other
    channels beside the mel (extra_channels.py's diagnostic runs) unless `extra_inputs`."""
    from .lpc import LPC_ORDER, formant_differences
    model, checkpoint = models_package().checkpoint.load_checkpoint(checkpoint_path, device)
    if checkpoint.get("formants") is not None:
        different = formant_differences(checkpoint["formants"]) or (
            ["the number of inputs"] if model.config.n_inputs != N_MELS + LPC_ORDER else [])
        if different:
            raise FormatError(f"{checkpoint_path}: trained with formant channels of other constants "
                              f"({', '.join(different)}; voiceface/lpc.py); re-train it with this code")
        return model, checkpoint
    if model.config.n_inputs != N_MELS and not extra_inputs:
        raise FormatError(f"{checkpoint_path}: trained on {model.config.n_inputs - N_MELS} input channels beside the "
                          f"{N_MELS} mel bins (2_architecture_training/extra_channels.py, a diagnostic); inference and "
                          "evaluate.py make the mel alone: score it with extra_channels.py --score")
    return model, checkpoint


@dataclass
class Frames:
    """Output frames: times (N,) seconds; blendshapes (N, 52) in [0, 1]; pose (N, 7) real units
    (x, y, z in cm from the neutral position, unit quaternion relative to the neutral rotation)."""
    indices: np.ndarray
    times: np.ndarray
    blendshapes: np.ndarray
    pose: np.ndarray

    @staticmethod
    def concatenate(parts: list["Frames"]) -> "Frames":
        parts = [p for p in parts if len(p.times)] or [Frames.empty()]
        return Frames(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("indices", "times", "blendshapes", "pose")))

    @staticmethod
    def empty() -> "Frames":
        return Frames(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, N_BLENDSHAPES), np.float32), np.zeros((0, 7)))


@dataclass
class Animator:
    """Streaming voice-to-face: push 16 kHz mono audio, get frames. See the module docstring."""
    model: object
    checkpoint: dict
    fps: float = OUTPUT_FPS
    front_end: AudioFrontEnd | None = None            # made for the model: with its formants if it reads them
    inputs: ModelInputs | None = None
    state: list | None = None
    outputs: list = field(default_factory=list)       # normalised model frames (n, 59), kept until used
    delay_frames: int = 0                              # the face moved this many 10 ms frames later (see above)
    stream: bool = True                                # a one-frame push runs the ONNX step (one_frame_step)
    strength: object = None                            # a strength.Strength (None: the face as the model made it)
    smoothed: tuple | None = None                      # its smoothing's state: the last output and speed
    first_kept: int = 0                                # model frame number of outputs[0][0]
    model_frames: int = 0
    samples: int = 0
    next_frame: int = 0

    def __post_init__(self):
        import torch
        from threadpoolctl import threadpool_limits
        # NumPy's OpenBLAS and PyTorch's OpenMP pools spin against each other on a few cores when
        # small numpy products (the front-end's mel projection) alternate with torch ops: with both
        # at two threads a 10 ms hop took 8 ms (p99 106 ms) and offline ran at 82x real time; with
        # OpenBLAS at one thread, 2.2 ms and 393x. PyTorch keeps its threads for the big products.
        threadpool_limits(limits=1, user_api="blas")
        self.torch = torch
        self.formants = self.checkpoint.get("formants") is not None
        self.inputs = ModelInputs(self.checkpoint["input_mode"], self.formants)
        self.front_end = AudioFrontEnd(formants=self.formants)
        self.state = self.model.stream_state()
        self.lookahead = int(self.checkpoint.get("lookahead_frames", 0))
        self.rest = None
        if self.strength is not None and not self.strength.identity:
            from .strength import rest_for
            self.rest = rest_for(self.strength, self.model, self.checkpoint)
        self.blinking = None                           # the drawn blinks' cycle (blinks.py), by model frame
        if self.strength is not None and self.strength.blinks:
            from .blinks import blink_table
            self.blinking = blink_table(self.strength.blinks)

    def one_frame_step(self):
        """The model's stateful one-frame step, run by ONNX Runtime on the CPU: a 10 ms hop then
        costs 0.26 ms (p99 0.43 ms) instead of eager PyTorch's 1.5 ms (p99 3.2 ms), which goes to
        Python and per-op dispatch on 23 tiny products; outputs agree to 2.4e-7. Exported once
        per model on first use, for exactly this shape; on a GPU the eager model runs instead.
        Only for streams: a file's 10 s blocks (animate_file, stream False) can leave a lone frame
        at the end (a 20.0 s file's last block), and exporting the step for it cost 2.0-3.1 s,
        the onnx package's import included (a 20 s file took 8.1-8.6 s; now 3.3-4.5 s)."""
        if getattr(self, "_step", None) is None:
            device = self.state[0].device if self.state else self.torch.device("cpu")
            self._step = self.model if device.type != "cpu" else onnx_one_frame_step(self.model)
        return self._step

    def warm_up(self) -> None:
        """Build and run the one-frame step once (on silence, keeping the state) before a live
        stream starts: exporting it takes about a second, which would otherwise delay the first
        frames of the stream (measured: p99 1.07 s from audio in to packet out without this)."""
        import copy
        silence = np.zeros(4 * WIN_LENGTH, np.float32)
        features = copy.deepcopy(self.front_end).process(silence)          # first FFT and BLAS calls, imports
        x = self.torch.from_numpy(copy.deepcopy(self.inputs).process(features.mel, features.vad, features.lsf))[None]
        with self.torch.inference_mode():
            out, _ = self.one_frame_step()(x[:, :1], [s.clone() for s in self.state])
        denormalize_targets(out[0].numpy())

    @property
    def latency_s(self) -> float:
        """Algorithmic latency beyond the chunk: the 25 ms window plus the look-ahead, less a face
        delay (a frame is never shown before its own time)."""
        return WIN_LENGTH / SAMPLE_RATE + max(0, self.lookahead - self.delay_frames) / FRAME_RATE

    def model_frame_for(self, k: int) -> int:
        """The model frame that output frame k takes (before clamping to what exists)."""
        return math.floor(k * FRAME_RATE / self.fps + 1e-9) - 1 + self.lookahead - self.delay_frames

    def push(self, samples: np.ndarray) -> Frames:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples += len(samples)
        features = self.front_end.process(samples)
        if len(features):
            x = self.torch.from_numpy(self.inputs.process(features.mel, features.vad, features.lsf))[None]
            x = x.to(self.state[0].device if self.state else "cpu")
            with self.torch.inference_mode():
                step = self.one_frame_step() if len(features) == 1 and self.stream else self.model
                out, self.state = step(x, self.state)
            frames = out[0].float().cpu().numpy()
            if self.strength is not None and self.strength.smoothing is not None:
                from .strength import smooth_frames
                frames, self.smoothed = smooth_frames(frames, self.strength, self.smoothed)
                frames = frames.astype(np.float32)
            self.outputs.append(frames)
            self.model_frames += len(features)
        last = self.model_frames - 1
        ready = self.next_frame
        # a frame is due once its model frame exists and its time lies inside the audio heard so
        # far (frame k is at k / fps: a stream of d seconds has ceil(d * fps) of them)
        while self.model_frame_for(ready) <= last and ready * SAMPLE_RATE < self.samples * self.fps - 1e-6:
            ready += 1
        return self._emit(ready)

    def finish(self) -> Frames:
        """The remaining frames up to ceil(duration * fps), the last ones taking the last model
        frame (no audio follows to look ahead into)."""
        total = math.ceil(self.samples / SAMPLE_RATE * self.fps - 1e-9)
        return self._emit(max(total, self.next_frame))

    def _emit(self, end: int) -> Frames:
        if end <= self.next_frame or self.model_frames == 0:
            return Frames.empty()
        kept = np.concatenate(self.outputs) if len(self.outputs) > 1 else self.outputs[0]
        self.outputs = [kept]
        ks = np.arange(self.next_frame, end)
        wanted = np.clip([self.model_frame_for(k) for k in ks], 0, self.model_frames - 1)
        values = denormalize_targets(kept[wanted - self.first_kept])
        if self.blinking is not None:                  # before the strength, which may deepen them
            from .blinks import add_blinks
            place = wanted % len(self.blinking)
            values[:, :N_BLENDSHAPES] = add_blinks(values[:, :N_BLENDSHAPES], self.blinking[place])
        if self.rest is not None:
            from .strength import apply_strength
            values = apply_strength(values, self.strength, self.rest)
        self.next_frame = end
        # frames before the earliest one still needed can go (bounded memory on long streams)
        drop = int(max(0, min(self.model_frame_for(end), self.model_frames - 1) - self.first_kept))
        if drop:
            self.outputs = [kept[drop:]]
            self.first_kept += drop
        # copies, not views: a view of `values` would keep its whole float64 block alive per part
        return Frames(ks, ks / self.fps, values[:, :N_BLENDSHAPES].astype(np.float32),
                      np.array(values[:, N_BLENDSHAPES:], dtype=np.float64))


def onnx_one_frame_step(model):
    """(x (1, 1, 80), state) -> (output (1, 1, 59), new state), as model(x, state), run by ONNX
    Runtime with one thread. The session is built once per model object and kept on it."""
    import io
    import warnings

    import onnxruntime
    import torch

    session = getattr(model, "_onnx_one_frame_session", None)
    if session is None:
        class Step(torch.nn.Module):                 # ONNX takes flat tensors, not a list
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x, *state):
                out, new_state = self.inner(x, list(state))
                return (out, *new_state)

        buffer = io.BytesIO()
        example = (torch.zeros(1, 1, model.config.n_inputs), *model.stream_state())
        n_layers = len(example) - 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Step(model).eval(), example, buffer, opset_version=17, dynamo=False,
                              input_names=["x"] + [f"state{i}" for i in range(n_layers)],
                              output_names=["face"] + [f"next{i}" for i in range(n_layers)])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1     # tiny ops: no pool
        session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        model._onnx_one_frame_session = session

    def step(x, state):
        feed = {"x": x.numpy()} | {f"state{i}": s.numpy() for i, s in enumerate(state)}
        outputs = session.run(None, feed)
        return torch.from_numpy(outputs[0]), [torch.from_numpy(o) for o in outputs[1:]]
    return step


class FrameCollector:
    """Frames gathered into arrays sized once from the container's stated duration (grown by half
    when it says too little), so a long file's frames are not held twice: as parts and then as
    their concatenation. Two hours at 30 fps are 216,000 frames, about 60 MB."""

    def __init__(self, expected: int):
        self.n = 0
        self.arrays = self._allocate(max(16, expected))

    @staticmethod
    def _allocate(capacity: int) -> list[np.ndarray]:
        return [np.zeros(capacity, np.int64), np.zeros(capacity), np.zeros((capacity, N_BLENDSHAPES), np.float32),
                np.zeros((capacity, 7))]

    def add(self, part: Frames) -> None:
        end = self.n + len(part.times)
        if end > len(self.arrays[0]):
            grown = self._allocate(max(end, len(self.arrays[0]) * 3 // 2))
            for new, old in zip(grown, self.arrays):
                new[:self.n] = old[:self.n]
            self.arrays = grown
        for array, values in zip(self.arrays, (part.indices, part.times, part.blendshapes, part.pose)):
            array[self.n:end] = values
        self.n = end

    def frames(self) -> Frames:
        return Frames(*(array[:self.n] for array in self.arrays))


def animate_file(path: str | Path, model, checkpoint: dict, fps: float = OUTPUT_FPS,
                 delay_frames: int = 0, strength=None) -> tuple[Frames, object]:
    """A whole audio or video file through the engine, in blocks (bounded memory), the face moved
    `delay_frames` 10 ms frames later against the sound, with `strength` (a strength.Strength)
    applied. Returns (frames, the decoded source's AudioSource)."""
    from .errors import InputError
    from .video import probe_duration
    source, blocks = open_audio(path)
    animator = Animator(model, checkpoint, fps, delay_frames=delay_frames, stream=False, strength=strength)
    collected = FrameCollector(math.ceil(probe_duration(path) * fps) + 1)
    for block in blocks:
        collected.add(animator.push(block))
    if source.samples < WIN_LENGTH:
        raise InputError(f"{path}: audio shorter than one 25 ms window; use a longer recording")
    collected.add(animator.finish())
    return collected.frames(), source


# --- exports -------------------------------------------------------------------------------------
# The ONNX opset of the files users take elsewhere (both --export-onnx forms). 15: the newest that
# Unity's Sentis 1.x-2.5 lists as supported (7-15), and the graphs need nothing newer: at 15 rather
# than 17 LayerNormalization becomes its seven primitive operators, and ONNX Runtime gives the same
# numbers (0.0 apart on 12 s) at the same speed (ARCHITECTURE.md, "The whole step in one ONNX file").
EXPORT_OPSET = 15


def export_onnx(model, path: Path, frames: int = 200) -> None:
    """The model as ONNX (opset EXPORT_OPSET): input `mel` (batch, frames, 80; 96 for a model that reads the
    formant channels after the mel), output `face` (batch, frames, 59), both with dynamic batch and
    length. The whole-sequence form: left padding included."""
    import torch
    from .formats import atomic_path
    example = torch.zeros(1, frames, model.config.n_inputs)
    with atomic_path(path) as tmp:
        torch.onnx.export(model.eval(), (example,), str(tmp), input_names=["mel"], output_names=["face"],
                          dynamic_axes={"mel": {0: "batch", 1: "frames"}, "face": {0: "batch", 1: "frames"}},
                          opset_version=EXPORT_OPSET, dynamo=False)
