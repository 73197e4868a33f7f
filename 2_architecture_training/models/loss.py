"""AudioBlendshapeLoss: what training minimises, term by term.

    base          Smooth L1 on the 52 blendshapes, each shape weighted (mouth shapes by mouth_weight)
    velocity      L1 on their first differences (per 0.1 s): motion, not only position
    acceleration  L1 on their second differences (per (0.1 s)^2): no jitter, no sluggishness
    silence       the base term again on the mouth-closure shapes where voice activity is 0: a shut
                  mouth in pauses (jawOpen, mouthClose, the lips' press, roll and up/down shapes)
    pose          squared error on the 7 normalised pose values
    pose_bound    squared excess of predicted translation beyond +-1 (10 cm): no drift
    correlation   1 - Pearson r of each mouth shape over each window, where the target moves (std
                  >= 0.01): the benchmarks' own measure, blind to the level and the scale the base
                  term looks after (train.py: weight 0.01; ARCHITECTURE.md measures it)

The blendshape terms share one unit: the weighted error of a frame, averaged over frames, with the
shape weights averaging 1. So silence weight 1 means the closure shapes count double in a silent
frame. (The first version averaged the silence term over its 10 shapes but the base term over all
52, which made jawOpen in silence five times as important as jawOpen in speech: on generated clips
the model learnt to hold jawOpen at its silence value everywhere, held-out r 0.93 -> -0.7.)

Every term is mask-aware (frames whose target is unknown or in a window's warm-up contribute
nothing) and comes back as (sum, count), so that several processes can divide by the count over
all of them: the distributed gradient then equals the single-process one exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TERMS = ("base", "velocity", "acceleration", "silence", "pose", "pose_bound", "correlation")
CLOSURE_SHAPES = ("jawOpen", "mouthClose", "mouthPressLeft", "mouthPressRight", "mouthRollLower",
                  "mouthRollUpper", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
                  "mouthUpperUpRight")
SMOOTH_L1_BETA = 0.02           # default: errors below this are squared (scores move by ~0.01-0.3)
DERIVATIVE_SCALE = 10.0         # differences per 10 ms frame, expressed per 0.1 s
MOUTH_PREFIXES = ("jaw", "mouth")  # the mouth shapes: mouth_weight, and the correlation term
CORRELATION_MIN_STD = 0.01      # a window's target track that moves less than this has no r to learn
CORRELATION_MIN_FRAMES = 10     # nor has a window with fewer known frames


def shape_weights(blendshape_names: tuple[str, ...], mouth_weight: float) -> torch.Tensor:
    """(52,) weights: mouth_weight for the jaw* and mouth* shapes, 1 for the rest, scaled to mean 1."""
    weights = torch.tensor([mouth_weight if name.startswith(MOUTH_PREFIXES) else 1.0 for name in blendshape_names])
    return weights / weights.mean()


class AudioBlendshapeLoss(torch.nn.Module):
    def __init__(self, weights: dict[str, float], blendshape_names: tuple[str, ...], n_blendshapes: int = 52,
                 mouth_weight: float = 1.0, beta: float = SMOOTH_L1_BETA, shape_spread: torch.Tensor | None = None):
        """shape_spread: (52,) each blendshape's standard deviation over the training frames; given,
        the blendshape terms measure each shape's error in units of its spread relative to the mean
        spread, so a shape that moves little (mouthFunnel) is not left in Smooth L1's flat square."""
        super().__init__()
        self.weights = {term: float(weights[term]) for term in TERMS}
        self.n = n_blendshapes
        self.beta = float(beta)
        self.register_buffer("shape_weight", shape_weights(blendshape_names, mouth_weight))
        closure = torch.zeros(n_blendshapes)
        closure[[blendshape_names.index(s) for s in CLOSURE_SHAPES]] = 1.0
        self.register_buffer("closure", closure * self.shape_weight)
        self.register_buffer("mouth", torch.tensor([i for i, name in enumerate(blendshape_names)
                                                    if name.startswith(MOUTH_PREFIXES)]))
        scale = torch.ones(n_blendshapes)
        if shape_spread is not None:
            spread = torch.as_tensor(shape_spread, dtype=torch.float32)
            spread = torch.clamp(spread, min=0.2 * float(spread.mean()))        # a still shape is not blown up
            scale = spread.mean() / spread
        self.register_buffer("shape_scale", scale)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                vad: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """prediction, target (B, T, 59); mask, vad (B, T) in {0, 1}. Returns {term: (sum, count)}."""
        n = self.n
        mask = mask.float()
        pred_b, true_b = prediction[..., :n].float() * self.shape_scale, target[..., :n].float() * self.shape_scale
        pred_p, true_p = prediction[..., n:].float(), target[..., n:].float()
        terms = {}
        error = F.smooth_l1_loss(pred_b, true_b, beta=self.beta, reduction="none")              # (B, T, 52)
        terms["base"] = (((error * self.shape_weight).sum(-1) * mask).sum(), mask.sum() * n)
        both = mask[:, 1:] * mask[:, :-1]
        velocity = DERIVATIVE_SCALE * (torch.diff(pred_b, dim=1) - torch.diff(true_b, dim=1))
        terms["velocity"] = (((velocity.abs() * self.shape_weight).sum(-1) * both).sum(), both.sum() * n)
        three = both[:, 1:] * mask[:, :-2]
        acceleration = DERIVATIVE_SCALE ** 2 * (torch.diff(pred_b, n=2, dim=1) - torch.diff(true_b, n=2, dim=1))
        terms["acceleration"] = (((acceleration.abs() * self.shape_weight).sum(-1) * three).sum(), three.sum() * n)
        silent = mask * (1.0 - vad.float())
        terms["silence"] = (((error * self.closure).sum(-1) * silent).sum(), silent.sum() * n)
        terms["pose"] = ((((pred_p - true_p) ** 2).sum(-1) * mask).sum(), mask.sum() * pred_p.shape[-1])
        excess = F.relu(pred_p[..., :3].abs() - 1.0) ** 2
        terms["pose_bound"] = ((excess.sum(-1) * mask).sum(), mask.sum() * 3)
        terms["correlation"] = self.correlation(pred_b[..., self.mouth], true_b[..., self.mouth], mask)
        return terms

    @staticmethod
    def correlation(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
        """(sum of 1 - r, count) over the (window, shape) pairs whose target moves; (B, T, S) tracks."""
        m = mask[..., None]
        frames = m.sum(1)                                                               # (B, 1)
        dp = (prediction - (prediction * m).sum(1, keepdim=True) / frames.clamp(min=1)[:, None]) * m
        dt = (target - (target * m).sum(1, keepdim=True) / frames.clamp(min=1)[:, None]) * m
        var_t = (dt ** 2).sum(1)
        r = (dp * dt).sum(1) / torch.sqrt((dp ** 2).sum(1) * var_t + 1e-12)             # (B, S)
        moves = ((var_t > frames * CORRELATION_MIN_STD ** 2) & (frames >= CORRELATION_MIN_FRAMES)).float()
        return ((1.0 - r).clamp(min=0.0) * moves).sum(), moves.sum()

    def combine(self, sums: dict[str, torch.Tensor], counts: dict[str, torch.Tensor]):
        """(total weighted loss, {term: mean}) from sums and counts (counts may be all-reduced)."""
        means = {term: sums[term] / counts[term].clamp(min=1.0) for term in TERMS}
        total = sum(self.weights[term] * means[term] for term in TERMS)
        return total, means
