"""The whole of inference as one ONNX file that needs no Python: 10 ms of 16 kHz audio and a state
vector in; the 52 blendshapes, the head pose, the voice-activity decision and the next state out.

An engine that runs ONNX (ONNX Runtime from C, C++, C#, Java or a browser; game engines' ONNX
runtimes) then animates a face from a microphone with nothing of ours beside it. The mel-in export
(engine.export_onnx) leaves the front-end and the input normalisation to the caller, which would
have to rewrite 300 lines of voiceface/audio.py exactly. Here they are in the graph, rewritten as
tensor operations for one 10 ms frame a call, and a test holds them to the Python engine:

- the front-end of voiceface/audio.py: the causal 25 ms window (the 240 samples before this hop
  ride in the state), the 512-point DFT as two products with a windowed cosine and sine basis, the
  mel filterbank, decibels against a full-scale sine, the RMS level, and VoiceActivity (its noise
  floor, running peak, hangover and the swing of the voice band over the last 0.5 s, whose levels
  and whether each was measured ride in the state);
- the model's inputs, voiceface.dataset.ModelInputs: the level mode's running voiced mean of mel
  power (its warm-up average, then the exponential one) and its two floors, or the fixed scale;
- for a model that reads them (--formants), the formant channels of voiceface/lpc.py: the
  autocorrelation as an inverse DFT of the power, Levinson-Durbin unrolled (in float32: lpc.py's
  white-noise floor keeps it within 4e-4 rad of lpc.py's float64, so the file holds no float64 and
  runs where a runtime has none),
  the line spectral frequencies as the sign changes of P and Q on lpc.py's grid placed by linear
  interpolation (where lpc.py would turn to eigenvalues, which ONNX has no operator for, on a grid
  16 times finer), and FormantInputs' running voiced mean;
- the model's one-frame step with each layer's left context (as Animator streams it);
- the output back in real units, as denormalize_targets: scores in [0, 1], translation in cm from
  the neutral position, a unit quaternion relative to the neutral rotation;
- exported with a strength (inference.py --strength), voiceface/strength.py's scale_from_rest
  around the model's rest, which the file's metadata records; with a smoothing (--smoothing), its
  filter (strength.one_euro_step) on the model's output first, its last output and speed in the state;
  with drawn blinks (--blinks), blinks.add_blinks before the strength, by the model frame's place in
  the blinks' cycle (a table of it inside, the place in the state).

The state is one float32 vector (1, state size) that starts as zeros: on its first call the graph
(its "started" slot at 0) puts in each part's own starting value (the noise floor's -70 dBFS, the
running level's -45 dB), so a caller only keeps what the last call returned. Output i is the face
of time (i + 1 - L) * 10 ms for a model of L frames of look-ahead (the file's metadata says L); an
animation at F frames a second takes, for its frame k, output floor(k * 100 / F) - 1 + L, as
engine.Animator does.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .audio import (DB_CEILING, DB_FLOOR, FILTERBANK, LEVEL_FLOOR_BELOW_DB, LEVEL_NORM_FRAMES, LEVEL_NORM_START_DB,
                    POWER_FLOOR, POWER_SCALE, REACH_BACK_FRAMES, VAD_ABSOLUTE_MIN_DB, VAD_BAND_BINS, VAD_BELOW_PEAK_DB,
                    VAD_FLOOR_MIN_DB, VAD_FLOOR_RISE_DB_PER_S, VAD_FLOOR_START_DB, VAD_HANGOVER_S, VAD_MARGIN_DB,
                    VAD_MIN_SWING_DB, VAD_MIN_THRESHOLD_DB, VAD_PEAK_DECAY_DB_PER_S, VAD_SWING_S, WINDOW,
                    front_end_config)
from .constants import (BLENDSHAPE_NAMES, FRAME_RATE, HOP_LENGTH, N_BLENDSHAPES, N_FFT, N_MELS, N_TARGETS, POSE_NAMES,
                        SAMPLE_RATE, WIN_LENGTH)
from .dataset import FIXED_DB_FLOOR, MEL_OFFSET_DB, MEL_SCALE_DB, TRANSLATION_SCALE_CM
from .engine import EXPORT_OPSET
from .lpc import (FORMANT_INPUT_SPREAD, LEVINSON_FLOOR, LEVINSON_WHITE_NOISE, LPC_ORDER, LSF_GRID, LSF_SPREAD,
                  PRE_EMPHASIS, RUNNING_MEAN_FRAMES, TYPICAL_LSF, formant_config)
from .errors import FormatError

STREAM_ONNX_FORMAT = "voiceface/stream_onnx"
STREAM_ONNX_FORMAT_VERSION = 1
SWING_FRAMES = int(round(VAD_SWING_S * FRAME_RATE))            # 50: the swing's span, this frame included
HANGOVER_FRAMES = int(round(VAD_HANGOVER_S * FRAME_RATE))      # 10
UNMEASURED = 1e9                # dB: stands in for a level not measured (VoiceActivity's NaN) in max and min
FINITE_BOUND = float(np.finfo(np.float32).max)   # |sample| at most this: a number (NaN and infinities are not)
FINE_LSF_GRID = 4096            # where lpc.py falls back to eigenvalues (two roots in one step of its grid: no
#                                 frame of the 33 real clips), the graph looks again on a grid 16 times finer


def reads_formants(model) -> bool:
    """Whether the model reads the formant channels after the mel (trained with --formants)."""
    return model.config.n_inputs == N_MELS + LPC_ORDER


def state_layout(model, smoothing: bool = False,
                 blinks: bool = False) -> list[tuple[str, tuple[int, ...], np.ndarray]]:
    """The state vector's parts in order: (name, shape, starting value); with `smoothing` the
    filter's last output and speed (strength.one_euro_step); with `blinks` the model frame's number
    in the blinks' cycle (blinks.blink_table). The model's left contexts (engine.Animator's state)
    come last."""
    parts = [("started", (1,), np.zeros(1)),
             ("audio_history", (WIN_LENGTH - HOP_LENGTH,), np.zeros(WIN_LENGTH - HOP_LENGTH)),
             ("vad_floor_db", (1,), np.full(1, VAD_FLOOR_START_DB)),
             ("vad_peak_db", (1,), np.full(1, VAD_FLOOR_START_DB)),
             ("vad_hold_frames", (1,), np.zeros(1)),
             ("vad_heard", (1,), np.zeros(1)),
             ("vad_unmeasured_frames", (1,), np.full(1, float(REACH_BACK_FRAMES))),
             ("vad_band_db", (SWING_FRAMES - 1,), np.zeros(SWING_FRAMES - 1)),
             ("vad_band_measured", (SWING_FRAMES - 1,), np.zeros(SWING_FRAMES - 1)),
             ("level_mean_power", (N_MELS,), np.full(N_MELS, 10 ** (LEVEL_NORM_START_DB / 10))),
             ("level_voiced_seen", (1,), np.zeros(1))]
    if reads_formants(model):
        parts += [("formant_mean_rad", (LPC_ORDER,), np.array(TYPICAL_LSF, np.float64)),
                  ("formant_voiced_seen", (1,), np.zeros(1))]
    if smoothing:
        parts += [("smoothed_output", (N_TARGETS,), np.zeros(N_TARGETS)),
                  ("smoothed_speed", (N_TARGETS,), np.zeros(N_TARGETS))]
    if blinks:
        parts += [("blink_frame", (1,), np.zeros(1))]
    for index, tensor in enumerate(model.stream_state()):
        parts.append((f"model_{index}", tuple(tensor.shape), np.zeros(tensor.shape)))
    return parts


def stream_step_module(model, input_mode: str, strength=None, rest: np.ndarray | None = None):
    """A torch module: (audio (1, 160) float32, state (1, S)) -> (blendshapes (1, 52), head_pose
    (1, 7), voice (1, 1), next state (1, S)); the graph the ONNX file holds. With a strength
    (strength.Strength, not the identity) and the model's rest (strength.rest_of), the face is scaled
    from that rest as the engine scales it, after its smoothing (strength.one_euro_step) and drawn
    blinks (blinks.add_blinks) if it has them."""
    import torch
    from .blinks import add_blinks, blink_table
    from .strength import one_euro_step, rest_target, scale_from_rest, smoothing_constants

    smoothing = strength is not None and strength.smoothing is not None
    blinks = strength is not None and bool(strength.blinks)
    layout = state_layout(model, smoothing, blinks)

    class StreamStep(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model.eval()
            self.fixed = input_mode == "fixed"
            n = np.arange(WIN_LENGTH)[:, None] * np.arange(N_FFT // 2 + 1)[None, :]      # (400, 257)
            angle = 2 * np.pi * n / N_FFT
            # the DFT of the window zero-padded to 512 points, the window folded into the basis
            self.register_buffer("cosine", torch.tensor(WINDOW[:, None] * np.cos(angle), dtype=torch.float32))
            self.register_buffer("sine", torch.tensor(WINDOW[:, None] * np.sin(angle), dtype=torch.float32))
            self.register_buffer("filterbank", torch.tensor(FILTERBANK.T, dtype=torch.float32))   # (257, 80)
            self.formants = reads_formants(model)
            if self.formants:
                # lpc.lsf_from_power: the pre-emphasised autocorrelation is an inverse real DFT of the power
                bins = np.arange(N_FFT // 2 + 1)
                weight = 1.0 + PRE_EMPHASIS ** 2 - 2.0 * PRE_EMPHASIS * np.cos(np.linspace(0.0, np.pi, len(bins)))
                counted = np.where((bins == 0) | (bins == N_FFT // 2), 1.0, 2.0)   # the half spectrum's bins twice
                inverse = counted[:, None] * np.cos(2 * np.pi * bins[:, None] * np.arange(LPC_ORDER + 1) / N_FFT) / N_FFT
                self.register_buffer("autocorrelation", torch.tensor(weight[:, None] * inverse, dtype=torch.float32))
                for name, grid in (("coarse", LSF_GRID), ("fine", FINE_LSF_GRID)):
                    # P and Q (degree p + 1) at grid + 1 points of [0, pi] by a 2 * grid point real DFT, turned
                    # by e^{jw(p+1)/2} as line_spectral_frequencies_fast turns them
                    w = np.arange(grid + 1) * (np.pi / grid)
                    angle = np.arange(LPC_ORDER + 2)[:, None] * w[None, :]
                    self.register_buffer(f"{name}_cos", torch.tensor(np.cos(angle), dtype=torch.float32))
                    self.register_buffer(f"{name}_sin", torch.tensor(-np.sin(angle), dtype=torch.float32))
                    self.register_buffer(f"{name}_turn_cos", torch.tensor(np.cos(w * (LPC_ORDER + 1) / 2),
                                                                          dtype=torch.float32))
                    self.register_buffer(f"{name}_turn_sin", torch.tensor(np.sin(w * (LPC_ORDER + 1) / 2),
                                                                          dtype=torch.float32))
                    self.register_buffer(f"{name}_grid", torch.tensor(w, dtype=torch.float32))
                self.register_buffer("lsf_spread", torch.tensor(LSF_SPREAD, dtype=torch.float32))
            self.register_buffer("start", torch.tensor(np.concatenate([v.reshape(-1) for _, _, v in layout]),
                                                       dtype=torch.float32)[None])
            self.strong = strength is not None and not strength.identity
            if self.strong:
                self.register_buffer("rest", torch.tensor(rest, dtype=torch.float32))
                self.register_buffer("gains", torch.tensor(strength.gains, dtype=torch.float32))
                self.register_buffer("towards", torch.tensor(rest_target(strength, rest), dtype=torch.float32))
                self.pose_gain = float(strength.pose)
            self.smoothing = smoothing
            if smoothing:
                cutoff, on = smoothing_constants(strength)
                self.register_buffer("cutoff", torch.tensor(cutoff, dtype=torch.float32)[None])
                self.register_buffer("smoothed", torch.tensor(on, dtype=torch.float32)[None])
            self.blinks = blinks
            if blinks:
                self.register_buffer("blinking", torch.tensor(blink_table(strength.blinks), dtype=torch.float32))
            self.slices, offset = [], 0
            for _, shape, _ in layout:
                size = int(np.prod(shape))
                self.slices.append((offset, offset + size, shape))
                offset += size

        def forward(self, audio, state):
            going = (state[:, :1] > 0).float()                               # 0 on a stream's first call
            state = torch.where(state[:, :1] > 0, state, self.start)        # the first call: starting values
            parts = [state[:, a:b].reshape(shape) if len(shape) > 1 else state[:, a:b]     # (1, n); a model's own shape
                     for a, b, shape in self.slices]
            history, floor, peak, hold, heard, unmeasured, band_levels, measured, mean, seen = parts[1:11]
            at = 11
            formant_mean, formant_seen = parts[at:at + 2] if self.formants else (None, None)
            at += 2 if self.formants else 0
            last_output, last_speed = parts[at:at + 2] if self.smoothing else (None, None)
            at += 2 if self.smoothing else 0
            blink_frame = parts[at] if self.blinks else None
            model_state = parts[at + 1:] if self.blinks else parts[at:]

            def decibels(power):
                return 10.0 * torch.log10(torch.clamp(power, min=POWER_FLOOR))

            # --- the front-end: one causal 25 ms frame ---------------------------------------------
            # a sample that is not a number is silence (audio.finite): NaN fails every comparison, so
            # this one also catches it, with operators every runtime has (no IsNaN, no IsInf)
            audio = torch.where(audio.abs() <= FINITE_BOUND, audio, torch.zeros_like(audio))
            frame = torch.cat([history, audio], dim=1)                     # (1, 400)
            real, imaginary = frame @ self.cosine, frame @ self.sine        # (1, 257)
            power = (real * real + imaginary * imaginary) * POWER_SCALE
            mel_db = torch.clamp(decibels(power @ self.filterbank), DB_FLOOR, DB_CEILING)   # (1, 80)
            rms_db = decibels((frame * frame).sum(dim=1, keepdim=True) / WIN_LENGTH)         # (1, 1)
            band_db = decibels(power[:, VAD_BAND_BINS[0]:VAD_BAND_BINS[1]].sum(dim=1, keepdim=True))

            # --- voice activity (audio.VoiceActivity, one frame) ------------------------------------
            loud = (rms_db > VAD_ABSOLUTE_MIN_DB).float()
            unmeasured = torch.where(heard > 0, unmeasured,
                                     torch.maximum(unmeasured, 1.0 + loud * float(REACH_BACK_FRAMES - 1)))
            heard = torch.maximum(heard, loud)
            now_measured = (unmeasured <= 0).float()
            unmeasured = torch.clamp(unmeasured - 1.0, min=0.0)
            levels = torch.cat([band_levels, band_db], dim=1)                # (1, 50): the last 0.5 s
            valid = torch.cat([measured, now_measured], dim=1)
            high = torch.where(valid > 0, levels, torch.full_like(levels, -UNMEASURED)).amax(dim=1, keepdim=True)
            low = torch.where(valid > 0, levels, torch.full_like(levels, UNMEASURED)).amin(dim=1, keepdim=True)
            swing = torch.where(valid.amax(dim=1, keepdim=True) > 0, high - low, torch.zeros_like(high))
            floor = torch.clamp(torch.minimum(rms_db, floor + VAD_FLOOR_RISE_DB_PER_S / FRAME_RATE),
                                min=VAD_FLOOR_MIN_DB)
            peak = torch.maximum(rms_db, peak - VAD_PEAK_DECAY_DB_PER_S / FRAME_RATE)
            minimum = torch.clamp(torch.clamp(peak - VAD_BELOW_PEAK_DB, max=VAD_MIN_THRESHOLD_DB),
                                  min=VAD_ABSOLUTE_MIN_DB)
            speech = (swing >= VAD_MIN_SWING_DB) & (rms_db > torch.maximum(minimum, floor + VAD_MARGIN_DB))
            hold = torch.where(speech, torch.full_like(hold, HANGOVER_FRAMES + 1.0), hold)
            voice = (hold > 0).float()                                        # (1, 1)
            hold = torch.clamp(hold - 1.0, min=0.0)

            # --- the model's inputs (dataset.ModelInputs) -------------------------------------------
            if self.fixed:
                x = (torch.clamp(mel_db, FIXED_DB_FLOOR, DB_CEILING) - MEL_OFFSET_DB) / MEL_SCALE_DB
            else:
                level_db = decibels(mean)                                     # the level before this frame
                level_db = torch.maximum(level_db, decibels(mean.mean(dim=1, keepdim=True)) - LEVEL_FLOOR_BELOW_DB)
                floor_db = decibels(torch.pow(10.0, level_db / 10.0).mean(dim=1, keepdim=True)) - LEVEL_FLOOR_BELOW_DB
                x = (torch.maximum(mel_db, floor_db) - level_db) / MEL_SCALE_DB
                mel_power = torch.pow(10.0, mel_db / 10.0)
                warm = mean + (mel_power - mean) / (seen + 1.0)               # the plain average of the voiced so far
                steady = mean + (mel_power - mean) / LEVEL_NORM_FRAMES        # then the exponential one
                updated = torch.where(seen < LEVEL_NORM_FRAMES, warm, steady)
                mean = torch.where(voice > 0, updated, mean)
                seen = torch.clamp(seen + voice, max=float(LEVEL_NORM_FRAMES))

            # --- the formant channels (lpc.FormantInputs of lpc.lsf_from_power) ----------------------
            if self.formants:
                lsf = self.line_spectral_frequencies(power)                  # (1, 16) radians
                x = torch.cat([x, FORMANT_INPUT_SPREAD * (lsf - formant_mean) / self.lsf_spread], dim=1)
                warm = formant_mean + (lsf - formant_mean) / (formant_seen + 1.0)
                steady = formant_mean + (lsf - formant_mean) / RUNNING_MEAN_FRAMES
                updated = torch.where(formant_seen < RUNNING_MEAN_FRAMES, warm, steady)
                formant_mean = torch.where(voice > 0, updated, formant_mean)
                formant_seen = torch.clamp(formant_seen + voice, max=float(RUNNING_MEAN_FRAMES))

            # --- the model, one frame, and its output in real units ---------------------------------
            out, model_state = self.model(x[:, None, :], list(model_state))    # (1, 1, 59)
            out = out[:, 0]
            if self.smoothing:      # the filter's first value is the first output itself, as in the engine
                last_output = going * last_output + (1 - going) * out
                out, last_speed = one_euro_step(out, last_output, last_speed, self.cutoff, self.smoothed)
            shapes = torch.clamp(out[:, :N_BLENDSHAPES], 0.0, 1.0)
            translation = out[:, N_BLENDSHAPES:N_BLENDSHAPES + 3] * TRANSLATION_SCALE_CM
            rotation = out[:, N_BLENDSHAPES + 3:]
            rotation = rotation / torch.clamp(rotation.norm(dim=1, keepdim=True), min=1e-12)
            if self.blinks:         # this model frame's place in the cycle, as the engine takes it
                shapes = add_blinks(shapes, self.blinking[blink_frame[0].long()])
                blink_frame = torch.remainder(blink_frame + 1.0, float(self.blinking.shape[0]))
            if self.strong:
                face = scale_from_rest(torch.cat([shapes, translation, rotation], dim=1), self.rest, self.gains,
                                       self.pose_gain, self.towards)
                shapes, translation, rotation = (face[:, :N_BLENDSHAPES], face[:, N_BLENDSHAPES:N_BLENDSHAPES + 3],
                                                 face[:, N_BLENDSHAPES + 3:])
            kept = [torch.ones_like(floor), frame[:, HOP_LENGTH:], floor, peak, hold, heard, unmeasured,
                    levels[:, 1:], valid[:, 1:], mean, seen] + ([formant_mean, formant_seen] if self.formants else [])
            kept += [out, last_speed] if self.smoothing else []
            kept += [blink_frame] if self.blinks else []
            kept += [s.reshape(1, -1) for s in model_state]
            return shapes, torch.cat([translation, rotation], dim=1), voice, torch.cat(kept, dim=1)

        def line_spectral_frequencies(self, power):
            """lpc.lsf_from_power for one frame: the autocorrelation, Levinson-Durbin (in float32 where
            lpc.levinson works in float64; LEVINSON_WHITE_NOISE keeps them within 4e-4 rad), then the
            roots of P and Q found as sign changes on LSF_GRID + 1 points and placed by linear
            interpolation (lpc.line_spectral_frequencies_fast); where a polynomial's changes do not
            count p / 2 the same on a grid 16 times finer."""
            r = power @ self.autocorrelation                                 # (1, 17)
            r0 = r[:, :1] * (1 + LEVINSON_WHITE_NOISE) + LEVINSON_FLOOR      # a white-noise floor, as lpc.levinson
            r = torch.cat([r0, r[:, 1:]], dim=1)
            a, error = [torch.ones_like(r0)], r0
            for i in range(1, LPC_ORDER + 1):
                k = -(r[:, i:i + 1] + sum(a[j] * r[:, i - j:i - j + 1] for j in range(1, i))) / error
                a = [a[0]] + [a[j] + k * a[i - j] for j in range(1, i)] + [k]
                error = error * (1 - k * k)
            return self.roots_of(torch.cat(a + [torch.zeros_like(r0)], dim=1))   # A padded to degree p + 1

        def roots_of(self, a):
            """(1, 18) prediction polynomial padded to degree p + 1 -> (1, 16) float32 line
            spectral frequencies, ascending."""
            mirrored = a.flip(dims=[1])
            coarse = [self.roots_on_grid(poly, "coarse", q) for q, poly in enumerate((a + mirrored, a - mirrored))]
            fine = [self.roots_on_grid(poly, "fine", q) for q, poly in enumerate((a + mirrored, a - mirrored))]
            complete = (coarse[0][1] & coarse[1][1]).unsqueeze(1)
            roots = torch.where(complete, torch.cat([coarse[0][0], coarse[1][0]], dim=1),
                                torch.cat([fine[0][0], fine[1][0]], dim=1))
            return torch.sort(roots, dim=1)[0]

        def roots_on_grid(self, poly, name: str, is_q: int):
            """(the p / 2 roots in (0, pi) of P (is_q 0) or Q (1) by their sign changes on the named
            grid (1, 8), whether the changes counted p / 2 (1,) bool)."""
            real, imaginary = poly @ getattr(self, f"{name}_cos"), poly @ getattr(self, f"{name}_sin")
            turn_cos, turn_sin = getattr(self, f"{name}_turn_cos"), getattr(self, f"{name}_turn_sin")
            grid = getattr(self, f"{name}_grid")
            if is_q:       # Q turned is imaginary, with a root at 0: the points after the first
                values, grid = (real * turn_sin + imaginary * turn_cos)[:, 1:], grid[1:]
            else:          # P turned is real, with a root at pi: the points before the last
                values, grid = (real * turn_cos - imaginary * turn_sin)[:, :-1], grid[:-1]
            left, right = values[:, :-1], values[:, 1:]
            # in float rather than bool or int64: tract has no Equal on bool and no CumSum on int64
            negative = (values < 0).to(values.dtype)
            change = (negative[:, :-1] - negative[:, 1:]).abs()              # (1, grid - 1): 1 at a change
            span = torch.where(change > 0, left - right, torch.ones_like(left))
            at = grid[:-1] + (grid[1:] - grid[:-1]) * left / span
            rank = torch.cumsum(change, dim=1) * change                      # k at the k-th change, else 0
            roots = [torch.where(rank == k, at, torch.zeros_like(at)).sum(dim=1, keepdim=True)
                     for k in range(1, LPC_ORDER // 2 + 1)]
            return torch.cat(roots, dim=1), change.sum(dim=1) == LPC_ORDER // 2

    # in eval mode as a whole: torch.onnx.export restores the mode of what it is given, and a
    # wrapper left in training mode would put the model back into it (dropout on, found by the check)
    return StreamStep().eval()


def stream_metadata(checkpoint: dict, checkpoint_path: Path | None, state_size: int, strength_record: str = "") -> dict:
    """What the file says about itself (ONNX metadata_props, each value a string); no checkpoint
    path for a model that was never saved (a benchmark's, a test's); `strength_record`:
    strength.strength_metadata's record of the strength inside ("" for none)."""
    from .formats import library_versions, now_iso, sha256_file
    lookahead = int(checkpoint.get("lookahead_frames", 0))
    return {
        "format": STREAM_ONNX_FORMAT, "format_version": str(STREAM_ONNX_FORMAT_VERSION),
        "created_by": "3_inference/inference.py --export-onnx", "created_at": now_iso(),
        "checkpoint": json.dumps({"path": None if checkpoint_path is None else str(checkpoint_path),
                                  "sha256": None if checkpoint_path is None else sha256_file(checkpoint_path),
                                  "preset": checkpoint.get("preset"), "epoch": checkpoint.get("epoch"),
                                  "input_mode": checkpoint.get("input_mode"),
                                  "formants": checkpoint.get("formants"),     # lpc.formant_config(), or None
                                  "git_commit": checkpoint.get("git_commit")}),
        "inputs": "audio (1, 160) float32: the next 10 ms of mono sound at 16000 Hz in [-1, 1] (a NaN or infinite "
                  "sample is taken as silence); state (1, "
                  f"{state_size}) float32: zeros at a stream's start, then the last call's next_state",
        "outputs": "blendshapes (1, 52) in [0, 1]; head_pose (1, 7): x, y, z in cm from the neutral position, then "
                   "qw, qx, qy, qz relative to the neutral rotation; voice (1, 1): 1 where voice activity is on; "
                   "next_state (1, S)",
        "sample_rate": str(SAMPLE_RATE), "hop_samples": str(HOP_LENGTH), "frame_rate": str(FRAME_RATE),
        "state_size": str(state_size), "lookahead_frames": str(lookahead),
        "timing": "output i is the face at (i + 1 - lookahead_frames) * 10 ms; an animation at F fps takes "
                  "for its frame k the output floor(k * 100 / F) - 1 + lookahead_frames (the last one at a stream's "
                  "end)",
        "blendshape_names": json.dumps(list(BLENDSHAPE_NAMES)), "pose_names": json.dumps(list(POSE_NAMES)),
        "front_end": json.dumps(front_end_config()),
        "strength": strength_record or "none: the face as the model made it",
        "libraries": json.dumps({**library_versions(), "onnx": __import__("onnx").__version__}),
    }


def export_stream_onnx(model, checkpoint: dict, checkpoint_path: Path | None, path: Path, strength=None) -> int:
    """Write the stream step of `model` as ONNX (opset engine.EXPORT_OPSET) with its metadata,
    atomically, with `strength` (a strength.Strength) inside. Returns the state size."""
    import io
    import warnings

    import onnx
    import torch
    from .formats import atomic_path
    from .strength import rest_for, strength_metadata
    rest = rest_for(strength, model, checkpoint) if strength is not None and not strength.identity else None
    step = stream_step_module(model, checkpoint["input_mode"], strength, rest)
    state_size = int(step.start.shape[1])
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(step, (torch.zeros(1, HOP_LENGTH), torch.zeros(1, state_size)), buffer,
                          opset_version=EXPORT_OPSET, dynamo=False, input_names=["audio", "state"],
                          output_names=["blendshapes", "head_pose", "voice", "next_state"])
    proto = onnx.load_from_string(buffer.getvalue())
    proto.doc_string = ("voiceface: 10 ms of 16 kHz audio and the state in, the face out. " +
                        (__doc__ or "").split("\n\n")[0])
    record = strength_metadata(strength, rest) if rest is not None else ""
    for key, value in stream_metadata(checkpoint, checkpoint_path, state_size, record).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    return state_size


def exported_checkpoint(path: Path, strength=None) -> str | None:
    """The SHA-256 of the checkpoint a stream ONNX at `path` was exported from, when it is one of
    this format version, front-end and opset, with the gains of `strength` (a strength.Strength;
    None: none) inside; None for anything else (no file, another file, another version, another
    strength): whether an export may be skipped as done."""
    import onnx
    if not Path(path).is_file():
        return None
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:                  # protobuf's DecodeError and its like: not an ONNX file
        return None
    meta = {entry.key: entry.value for entry in proto.metadata_props}
    if (meta.get("format"), meta.get("format_version")) != (STREAM_ONNX_FORMAT, str(STREAM_ONNX_FORMAT_VERSION)):
        return None
    if [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")] != [EXPORT_OPSET]:
        return None                      # an older export's opset (17 before 2026-12-06): export again
    try:
        made = json.loads(meta["checkpoint"])
        if json.loads(meta["front_end"]) != front_end_config() or made.get("formants") not in (None, formant_config()):
            return None                  # front-end or formant constants of another version: export again
        inside = json.loads(meta["strength"]) if meta.get("strength", "").startswith("{") else {}
        wanted = {} if strength is None or strength.identity else strength.describe()
        unset = {"blendshapes": {}, "pose": 1.0, "rest_to": {}, "smoothing": {}, "blinks": {}}
        if any(inside.get(k, d) != wanted.get(k, d) for k, d in unset.items()):
            return None                  # exported with other gains, rest, smoothing or blinks: export again
        return made.get("sha256")
    except (KeyError, ValueError, AttributeError):
        return None


def open_stream_onnx(path: Path):
    """(ONNX Runtime session with one thread, metadata dict), refusing another format or version."""
    import onnxruntime
    from .errors import InputError
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1      # a frame is tiny: no thread pool
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:                                         # ONNX Runtime raises its own kinds
        raise InputError(f"{path}: not an ONNX file ONNX Runtime can load ({str(error).splitlines()[0]}); "
                         "export it again with inference.py --export-onnx") from None
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("format") != STREAM_ONNX_FORMAT or meta.get("format_version") != str(STREAM_ONNX_FORMAT_VERSION):
        raise FormatError(f"{path}: not a voiceface stream ONNX of format version {STREAM_ONNX_FORMAT_VERSION} "
                          f"(it says {meta.get('format')!r} {meta.get('format_version')!r}); export it again with "
                          "inference.py --export-onnx")
    return session, meta


def run_stream_onnx(session, meta: dict, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """16 kHz mono samples through the file, one 10 ms hop a call (a last partial hop is not
    run, as the front-end waits for it). Returns (blendshapes (T, 52), head pose (T, 7), voice (T,),
    seconds each call took (T,))."""
    state = np.zeros((1, int(meta["state_size"])), np.float32)
    samples = np.asarray(samples, np.float32).reshape(-1)
    n = len(samples) // HOP_LENGTH
    shapes, pose, voice, seconds = (np.zeros((n, N_BLENDSHAPES), np.float32), np.zeros((n, 7), np.float32),
                                    np.zeros(n, np.float32), np.zeros(n))
    for i in range(n):
        hop = samples[i * HOP_LENGTH:(i + 1) * HOP_LENGTH][None]
        started = time.perf_counter()
        face, head, voiced, state = session.run(None, {"audio": hop, "state": state})
        seconds[i] = time.perf_counter() - started
        shapes[i], pose[i], voice[i] = face[0], head[0], voiced[0, 0]
    return shapes, pose, voice.astype(np.float32), seconds


def check_audio(seconds: float = 12.0) -> np.ndarray:
    """What the export is checked on: 0.5 s of digital silence, 1.5 s of room noise, generated speech
    over the noise at two levels 20 dB apart, then silence again; the speech as a phone line passes
    it (300-3400 Hz), so that the bins above hold only the noise and the level mode's floor under
    the running level comes into play. Every path of voice activity and the input normalisation is
    taken. (N,) float32 at 16 kHz."""
    from .synthetic import room_noise, speech_envelope, voiced_audio
    noise = room_noise("pink", -66.0, seconds - 1.0, SAMPLE_RATE, 7)            # from 0.5 s to the last 0.5 s
    speech = voiced_audio(speech_envelope(seconds - 3.0, SAMPLE_RATE, 7), SAMPLE_RATE, 7)   # 2 s to the last 1 s
    spectrum = np.fft.rfft(speech)
    hz = np.fft.rfftfreq(len(speech), 1 / SAMPLE_RATE)
    speech = np.fft.irfft(spectrum * ((hz >= 300) & (hz <= 3400)), len(speech)).astype(np.float32)
    speech[len(speech) // 2:] *= 0.1
    start = int(1.5 * SAMPLE_RATE)
    noise[start:start + len(speech)] += speech
    return np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), noise, np.zeros(SAMPLE_RATE // 2, np.float32)])


# How far the file's outputs may land from the Python engine's (compare_with_engine) and still be
# taken as the same face: float32 in the graph against NumPy's float64 level arithmetic. For a model
# that reads the formant channels, thirty times that: their linear prediction runs in float32 in the
# graph and in float64 in lpc.py, within 3.8e-4 rad of each other on the 33 real clips, which a
# trained one-speaker model turned into up to 5.6e-4 in a score there (3.3e-5 on the check sound).
# Faults of the graph's formant arithmetic still fail it on the check sound with the tests' model:
# the running mean's warm-up divisor one too high (1.3e-2 in a score), the inputs' spread 1 % too
# wide (5.4e-2 cm), pre-emphasis 0.96 for 0.97 (8.7e-3), the white-noise floor of before (3.0e-2);
# not the steady average's divisor one too high (6.5e-5 in a score: a 3 s average's 300 made 301).
ENGINE_LIMITS = {"blendshapes": 1e-4, "rotation": 1e-4, "translation_cm": 1e-3}
FORMANT_LIMITS_FACTOR = 30


def compare_with_engine(path: Path, model, checkpoint: dict, samples: np.ndarray | None = None,
                        strength=None) -> dict:
    """The file run in ONNX Runtime one hop at a time against the Python front-end, ModelInputs and
    model on the whole signal (and `strength`, a strength.Strength, its smoothing, blinks and gains
    applied as the engine applies them):
    the largest differences (scores; translation in cm; quaternion
    components), the frames whose voice activity agrees, the time a call takes, and whether all that
    is within ENGINE_LIMITS ("agrees")."""
    import torch
    from .audio import compute_features
    from .dataset import ModelInputs, denormalize_targets
    samples = check_audio() if samples is None else np.asarray(samples, np.float32)
    formants = reads_formants(model)
    features = compute_features(samples, formants)
    x = ModelInputs(checkpoint["input_mode"], formants).process(features.mel, features.vad, features.lsf)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)[None])[0].float().numpy()
    if strength is not None:
        from .strength import smooth_frames
        expected = smooth_frames(expected, strength)[0]
    expected = denormalize_targets(expected)
    if strength is not None and strength.blinks:
        from .blinks import add_blinks, blink_table
        table = blink_table(strength.blinks)
        at = np.arange(len(expected)) % len(table)                  # output i is model frame i
        expected[:, :N_BLENDSHAPES] = add_blinks(expected[:, :N_BLENDSHAPES], table[at])
    if strength is not None and not strength.identity:
        from .strength import apply_strength, rest_for
        expected = apply_strength(expected, strength, rest_for(strength, model, checkpoint))
    session, meta = open_stream_onnx(path)
    shapes, pose, voice, seconds = run_stream_onnx(session, meta, samples)
    check = {"frames": len(voice), "voice_agrees": int((voice == features.vad).sum()),
             "blendshapes": float(np.abs(shapes - expected[:, :N_BLENDSHAPES]).max()),
             "translation_cm": float(np.abs(pose[:, :3] - expected[:, N_BLENDSHAPES:N_BLENDSHAPES + 3]).max()),
             "rotation": float(np.abs(pose[:, 3:] - expected[:, N_BLENDSHAPES + 3:]).max()),
             "step_ms_p50": float(np.median(seconds) * 1e3), "step_ms_p99": float(np.percentile(seconds, 99) * 1e3)}
    factor = FORMANT_LIMITS_FACTOR if formants else 1
    check["agrees"] = check["voice_agrees"] == check["frames"] and all(
        check[k] <= limit * factor for k, limit in ENGINE_LIMITS.items())
    return check
