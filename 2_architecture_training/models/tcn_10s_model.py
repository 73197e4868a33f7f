"""A causal dilated temporal convolutional network from 100 Hz log-mel frames to 52 blendshapes
and 7 normalised head-pose values per frame.

    input (B, T, 80) -> per-bin standardisation -> 1x1 projection -> N residual blocks -> LayerNorm
          -> 1x1 head (+ a linear skip from the last 300 ms of input frames) -> (B, T, 59)
    block: x + Dropout(PW(GELU(PW(LayerNorm(DepthwiseCausalConv(x))))))      (ConvNeXt-like)
    all in (B, T, C): the pointwise layers are plain matrix products over the frames

Only the depthwise convolutions look at other frames, each at `dilation` steps back, so the
receptive field is 1 + (kernel_size - 1) * sum(dilations) frames: 1023 (10.23 s) for the default.
Padding is internal and on the left (the past) only, so output t never depends on input after t.
Each layer's left context, (kernel_size - 1) * dilation frames, is what a streaming engine must
remember: `stream_state()` and `forward(x, state)` carry exactly that between chunks, and give the
same numbers as a whole-sequence pass.

The standardisation is part of the model (buffers: each mel bin's mean and standard deviation over
the training split, set by train.py before the first step), so inference, streaming and ONNX apply
it without knowing about it; a new model starts with 0 and 1.

Heads: sigmoid for the blendshapes ([0, 1], as MediaPipe scores are) — or, with blendshape_output
"clamp", the logit itself while training and clamped to [0, 1] otherwise — and POSE_BOUND * tanh
for the pose, whose normalised values lie in about [-1, 1] (voiceface.dataset).

The preset "gru" (backbone "gru") puts two GRU layers where the blocks are, everything else the
same, its hidden state first in the stream's state: the design note's rejected alternative, kept to
measure that choice (ARCHITECTURE.md, "The model": a tie with look-ahead, lower strictly causal,
a third of the TCN's offline speed).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_INPUTS = 80           # mel bins (voiceface.constants.N_MELS)
N_BLENDSHAPES = 52
N_POSE = 7
BLENDSHAPE_OUTPUTS = ("sigmoid", "clamp")
POSE_BOUND = 1.5        # the pose head's range: normalised pose reaches about +-1, leave room


@dataclass
class TCNConfig:
    channels: int = 192
    kernel_size: int = 3
    dilations: tuple = (1, 2, 4, 8, 16, 32, 64, 128, 128, 128)
    expansion: int = 2              # width of the pointwise layers, as a multiple of channels
    dropout: float = 0.1
    n_inputs: int = N_INPUTS
    n_blendshapes: int = N_BLENDSHAPES
    n_pose: int = N_POSE
    pose_bound: float = POSE_BOUND
    skip_taps: int = 0              # a linear path from this many past input frames to the outputs (0: none)
    skip_step: int = 2              # frames between its taps: 16 taps every 2 frames read 300 ms
    blendshape_output: str = "sigmoid"  # sigmoid, or clamp: the logit itself, clamped to [0, 1] outside training
    backbone: str = "tcn"           # tcn (the dilated blocks), or gru: the design note's rejected alternative, a
    #                                 recurrent network of recurrent_layers GRU layers of `channels` units, kept
    #                                 to measure that choice (ARCHITECTURE.md, "The model")
    recurrent_layers: int = 2

    @property
    def receptive_field(self) -> int | None:
        """Frames of input that reach one output frame, itself included (None for the GRU: all of the past)."""
        if self.backbone == "gru":
            return None
        blocks = 1 + (self.kernel_size - 1) * sum(self.dilations)
        return max(blocks, 1 + (self.skip_taps - 1) * self.skip_step) if self.skip_taps else blocks

    def to_dict(self) -> dict:
        return {**asdict(self), "dilations": list(self.dilations)}

    @staticmethod
    def from_dict(values: dict) -> "TCNConfig":
        return TCNConfig(**{**values, "dilations": tuple(values["dilations"])})


SKIP_TAPS = 16                  # the linear skip reads 300 ms (16 taps, 20 ms apart): the ridge baseline's context
PRESETS = {
    # 10.23 s of context; 3.1 MFLOP a frame: ~300x real time needs half of two cores' matmul peak
    "default": TCNConfig(skip_taps=SKIP_TAPS),
    # the same context at half the width: a quarter of the work; what the benchmarks measured (train.py's default)
    "small": TCNConfig(channels=96, skip_taps=SKIP_TAPS),
    # for tests and the built-in sample: trains in seconds on a CPU; 2.55 s of context
    "tiny": TCNConfig(channels=32, dilations=(1, 2, 4, 8, 16, 32, 64), dropout=0.0, skip_taps=SKIP_TAPS),
    # not a TCN: two GRU layers of 192 units in place of the blocks, about small's parameter count; the
    # design note chose the TCN over a recurrent network without a measurement, and this preset is that one
    "gru": TCNConfig(channels=192, dilations=(), backbone="gru", skip_taps=SKIP_TAPS),
}
BACKBONES = ("tcn", "gru")


class CausalDepthwiseConv(nn.Module):
    """Depthwise 1-D convolution over (B, T, C) that sees `(kernel_size - 1) * dilation` frames of
    the past and none of the future. The left padding is internal (and kernel_size 1 works).

    Written as kernel_size fused multiply-adds of time-shifted slices rather than nn.Conv1d:
    the model then stays in (B, T, C) from end to end, and the transposes that Conv1d's (B, C, T)
    layout forced around every block (15 % of the forward pass, measured) are gone."""

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.left_context = (kernel_size - 1) * dilation
        bound = 1.0 / math.sqrt(kernel_size)               # nn.Conv1d's default initialisation
        self.weight = nn.Parameter(torch.empty(kernel_size, channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, past: torch.Tensor | None = None):
        """x (B, T, C). past (B, left_context, C): the inputs before x (zeros at a sequence's
        start). Returns (output (B, T, C), the last left_context inputs, for the next chunk)."""
        left, length = self.left_context, x.shape[1]
        if past is None:
            past = x.new_zeros(x.shape[0], left, x.shape[2])
        padded = torch.cat([past, x], dim=1) if left else x            # (B, left + T, C)
        # tap j looks j * dilation frames back; the last weight row is the present frame
        out = torch.addcmul(self.bias, x, self.weight[-1])
        for j in range(1, self.kernel_size):
            lag = j * self.dilation
            out = torch.addcmul(out, padded[:, left - lag:left - lag + length], self.weight[-1 - j])
        return out, padded[:, padded.shape[1] - left:]


class LinearSkip(nn.Module):
    """A causal linear map from the last `taps` input frames (every `step` frames) straight to the
    output logits: the ridge baseline's reader of stacked frames, inside the model and trained with
    it. Zero at the start, so a new model is the plain TCN; the blocks then only need to add what a
    linear reader misses. (Without it, held-out jawOpen r of the TCN peaked in the first epochs, while
    it was still nearly linear, then fell as it memorised the training speakers.)"""

    def __init__(self, n_inputs: int, n_outputs: int, taps: int, step: int):
        super().__init__()
        self.taps, self.step = taps, step
        self.left_context = (taps - 1) * step
        self.weight = nn.Parameter(torch.zeros(taps, n_inputs, n_outputs))

    @property
    def offsets(self) -> list[int]:
        """The input frames it reads relative to the output frame, oldest first (as voiceface.ridge)."""
        return [-j * self.step for j in reversed(range(self.taps))]

    def forward(self, x: torch.Tensor, past: torch.Tensor | None = None):
        """x (B, T, n_inputs), past (B, left_context, n_inputs) -> ((B, T, n_outputs), new past)."""
        left, length = self.left_context, x.shape[1]
        if past is None:
            past = x.new_zeros(x.shape[0], left, x.shape[2])
        padded = torch.cat([past, x], dim=1) if left else x              # (B, left + T, n_inputs)
        out = x @ self.weight[0]                                          # tap 0: the present frame
        for j in range(1, self.taps):
            lag = j * self.step
            out = out + padded[:, left - lag:left - lag + length] @ self.weight[j]
        return out, padded[:, padded.shape[1] - left:]


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, expansion: int, dropout: float):
        super().__init__()
        self.temporal = CausalDepthwiseConv(channels, kernel_size, dilation)
        self.norm = nn.LayerNorm(channels)                   # per frame: no statistics over time
        self.expand = nn.Linear(channels, expansion * channels)
        self.contract = nn.Linear(expansion * channels, channels)
        self.dropout = nn.Dropout(dropout)
        # each block starts as the identity: without this, ten residual additions grew the signal
        # until the pose head's tanh sat at its bound from the first step, where it cannot learn
        nn.init.zeros_(self.contract.weight)
        nn.init.zeros_(self.contract.bias)

    def forward(self, x: torch.Tensor, past: torch.Tensor | None = None):
        """x (B, T, C) -> (B, T, C), and the convolution's new past."""
        h, keep = self.temporal(x, past)
        h = self.contract(F.gelu(self.expand(self.norm(h))))
        return x + self.dropout(h), keep


class VoiceToFaceTCN(nn.Module):
    """(B, T, 80) normalised mel -> (B, T, 59): 52 blendshapes in [0, 1], 7 pose values in
    [-pose_bound, pose_bound]. Causal; see the module docstring."""

    def __init__(self, config: TCNConfig):
        super().__init__()
        self.config = config
        self.register_buffer("input_mean", torch.zeros(config.n_inputs))
        self.register_buffer("input_std", torch.ones(config.n_inputs))
        if config.backbone not in BACKBONES:
            raise ValueError(f"backbone {config.backbone!r}: choose one of {', '.join(BACKBONES)}")
        self.input = nn.Linear(config.n_inputs, config.channels)
        self.blocks = nn.ModuleList(ResidualBlock(config.channels, config.kernel_size, d, config.expansion,
                                                  config.dropout) for d in config.dilations)
        self.recurrent = self.recurrent_dropout = None
        if config.backbone == "gru":                # dropout between its layers and after the last, as the blocks have
            self.recurrent = nn.GRU(config.channels, config.channels, config.recurrent_layers, batch_first=True,
                                    dropout=config.dropout if config.recurrent_layers > 1 else 0.0)
            self.recurrent_dropout = nn.Dropout(config.dropout)
        self.final_norm = nn.LayerNorm(config.channels)
        self.head = nn.Linear(config.channels, config.n_blendshapes + config.n_pose)
        self.skip = (LinearSkip(config.n_inputs, config.n_blendshapes + config.n_pose, config.skip_taps,
                                config.skip_step) if config.skip_taps else None)
        with torch.no_grad():
            # start near the neutral face: small outputs, and the identity rotation (qw = 1, not a
            # zero quaternion whose direction would be noise)
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            # scores near 0.1, MediaPipe's usual
            self.head.bias[:config.n_blendshapes] = 0.1 if config.blendshape_output == "clamp" else math.log(0.1 / 0.9)
            self.head.bias[config.n_blendshapes + 3] = math.atanh(1.0 / config.pose_bound)

    @property
    def receptive_field(self) -> int | None:
        return self.config.receptive_field

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor, floor: float = 0.02) -> None:
        """Each input bin's mean and standard deviation over the training data; a standard deviation
        under `floor` (a bin that hardly moves, e.g. above a codec's cut-off) is raised to it, so
        its noise is not blown up."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=self.input_mean.dtype))
        self.input_std.copy_(torch.clamp(torch.as_tensor(std, dtype=self.input_std.dtype), min=floor))

    def set_linear_reader(self, weights, intercept) -> None:
        """Start the linear skip as a fitted linear reader of the (standardised) input: weights
        (taps, 80, k) per offset of skip.offsets, oldest first, and intercept (k,) for the first k
        outputs (the blendshapes), in the units of the logit (scores, or for the sigmoid their logits)."""
        if self.skip is None:
            raise ValueError("a linear reader needs the linear skip (skip_taps > 0)")
        weights = torch.as_tensor(weights, dtype=self.skip.weight.dtype)
        k = weights.shape[-1]
        with torch.no_grad():
            self.skip.weight[:, :, :k] = weights.flip(0)                 # the skip's tap 0 is the present frame
            self.head.bias[:k] = torch.as_tensor(intercept, dtype=self.head.bias.dtype)

    @property
    def left_contexts(self) -> list[int]:
        """Frames of past each temporal layer needs (the blocks', then the linear skip's): what a
        streaming engine keeps per layer."""
        return [block.temporal.left_context for block in self.blocks] + (
            [self.skip.left_context] if self.skip is not None else [])

    def stream_state(self, batch: int = 1) -> list[torch.Tensor]:
        """The state at a stream's start: zeros, as the offline pass pads with (and, for the GRU,
        its hidden state (layers, batch, channels) first, zeros as nn.GRU starts)."""
        parameter = self.head.weight
        widths = [self.config.channels] * len(self.blocks) + ([self.config.n_inputs] if self.skip is not None else [])
        hidden = ([torch.zeros(self.config.recurrent_layers, batch, self.config.channels, dtype=parameter.dtype,
                               device=parameter.device)] if self.recurrent is not None else [])
        return hidden + [torch.zeros(batch, left, width, dtype=parameter.dtype, device=parameter.device)
                         for left, width in zip(self.left_contexts, widths)]

    def path_logits(self, x: torch.Tensor, state: list[torch.Tensor] | None = None):
        """The two paths before the output functions: (the blocks' head (B, T, 59), the linear
        skip's (B, T, 59) or None, new state). Their sum goes through the sigmoid and tanh."""
        x = (x - self.input_mean) / self.input_std
        h = self.input(x)                                      # (B, T, C) throughout
        new_state, first = [], 0
        if self.recurrent is not None:
            h, hidden = self.recurrent(h, None if state is None else state[0])
            h = self.recurrent_dropout(h)
            new_state.append(hidden)
            first = 1
        for index, block in enumerate(self.blocks):
            h, keep = block(h, None if state is None else state[first + index])
            new_state.append(keep)
        blocks = self.head(self.final_norm(h))                 # (B, T, 59)
        linear = None
        if self.skip is not None:
            linear, keep = self.skip(x, None if state is None else state[first + len(self.blocks)])
            new_state.append(keep)
        return blocks, linear, new_state

    def forward(self, x: torch.Tensor, state: list[torch.Tensor] | None = None):
        """x (B, T, 80). Without state: the whole sequence from its start, returns (B, T, 59).
        With state (from stream_state or a previous call): x continues the stream; returns
        ((B, T, 59), new state)."""
        out, linear, new_state = self.path_logits(x, state)
        if linear is not None:
            out = out + linear
        n = self.config.n_blendshapes
        if self.config.blendshape_output == "clamp":
            # linear while training (its gradient never fades, the loss pulls stray values back), in
            # [0, 1] wherever its output is used
            shapes = out[..., :n] if self.training else torch.clamp(out[..., :n], 0.0, 1.0)
        else:
            shapes = torch.sigmoid(out[..., :n])
        out = torch.cat([shapes, self.config.pose_bound * torch.tanh(out[..., n:])], dim=-1)
        return out if state is None else (out, new_state)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_frame(self) -> int:
        """Multiply-adds x 2 per output frame (the matrix work; elementwise ops left out)."""
        c, e, k = self.config.channels, self.config.expansion, self.config.kernel_size
        per_block = c * k + 2 * c * e * c
        outputs = self.config.n_blendshapes + self.config.n_pose
        recurrent = 2 * 3 * c * c * self.config.recurrent_layers if self.recurrent is not None else 0
        macs = self.config.n_inputs * c + len(self.config.dilations) * per_block + recurrent + c * outputs + \
            self.config.skip_taps * self.config.n_inputs * outputs
        return 2 * macs


def describe_presets() -> str:
    lines = [f"{'preset':8s} {'channels':>8s} {'layers':>6s} {'receptive field':>16s} {'parameters':>11s} "
             f"{'MFLOP/frame':>11s}"]
    for name, config in PRESETS.items():
        model = VoiceToFaceTCN(config)
        field = (f"{config.receptive_field:7d} ({config.receptive_field / 100:5.2f} s)" if config.receptive_field
                 else f"{'all of the past':>16s}")
        layers = len(config.dilations) or config.recurrent_layers
        lines.append(f"{name:8s} {config.channels:8d} {layers:6d} {field} "
                     f"{model.parameter_count():11,d} {model.flops_per_frame() / 1e6:11.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe_presets())
