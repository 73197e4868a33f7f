"""AudioBlendshapeLoss: what training minimises, term by term.

    base          Smooth L1 on the 52 blendshapes
    velocity      L1 on their first differences (per 0.1 s): motion, not only position
    acceleration  L1 on their second differences (per (0.1 s)^2): no jitter, no sluggishness
    silence       Smooth L1 on the mouth-closure shapes where voice activity is 0: a shut mouth
                  in pauses (jawOpen, mouthClose, the lips' press, roll and up/down shapes)
    pose          squared error on the 7 normalised pose values
    pose_bound    squared excess of predicted translation beyond +-1 (10 cm): no drift

Every term is mask-aware (frames whose target is unknown or in a window's warm-up contribute
nothing) and comes back as (sum, count), so that several processes can divide by the count over
all of them: the distributed gradient then equals the single-process one exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TERMS = ("base", "velocity", "acceleration", "silence", "pose", "pose_bound")
CLOSURE_SHAPES = ("jawOpen", "mouthClose", "mouthPressLeft", "mouthPressRight", "mouthRollLower",
                  "mouthRollUpper", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
                  "mouthUpperUpRight")
SMOOTH_L1_BETA = 0.02           # blendshape errors below this are squared: scores move by ~0.01-0.3
DERIVATIVE_SCALE = 10.0         # differences per 10 ms frame, expressed per 0.1 s


class AudioBlendshapeLoss(torch.nn.Module):
    def __init__(self, weights: dict[str, float], blendshape_names: tuple[str, ...], n_blendshapes: int = 52):
        super().__init__()
        self.weights = {term: float(weights[term]) for term in TERMS}
        self.n = n_blendshapes
        self.register_buffer("closure", torch.tensor([blendshape_names.index(s) for s in CLOSURE_SHAPES]))

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                vad: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """prediction, target (B, T, 59); mask, vad (B, T) in {0, 1}. Returns {term: (sum, count)}."""
        n = self.n
        mask = mask.float()
        pred_b, true_b = prediction[..., :n].float(), target[..., :n].float()
        pred_p, true_p = prediction[..., n:].float(), target[..., n:].float()
        terms = {}
        base = F.smooth_l1_loss(pred_b, true_b, beta=SMOOTH_L1_BETA, reduction="none").sum(-1)   # (B, T)
        terms["base"] = ((base * mask).sum(), mask.sum() * n)
        both = mask[:, 1:] * mask[:, :-1]
        velocity = DERIVATIVE_SCALE * (torch.diff(pred_b, dim=1) - torch.diff(true_b, dim=1))
        terms["velocity"] = ((velocity.abs().sum(-1) * both).sum(), both.sum() * n)
        three = both[:, 1:] * mask[:, :-2]
        acceleration = DERIVATIVE_SCALE ** 2 * (torch.diff(pred_b, n=2, dim=1) - torch.diff(true_b, n=2, dim=1))
        terms["acceleration"] = ((acceleration.abs().sum(-1) * three).sum(), three.sum() * n)
        silent = mask * (1.0 - vad.float())
        closure = F.smooth_l1_loss(pred_b[..., self.closure], true_b[..., self.closure], beta=SMOOTH_L1_BETA,
                                   reduction="none").sum(-1)
        terms["silence"] = ((closure * silent).sum(), silent.sum() * len(self.closure))
        terms["pose"] = ((((pred_p - true_p) ** 2).sum(-1) * mask).sum(), mask.sum() * pred_p.shape[-1])
        excess = F.relu(pred_p[..., :3].abs() - 1.0) ** 2
        terms["pose_bound"] = ((excess.sum(-1) * mask).sum(), mask.sum() * 3)
        return terms

    def combine(self, sums: dict[str, torch.Tensor], counts: dict[str, torch.Tensor]):
        """(total weighted loss, {term: mean}) from sums and counts (counts may be all-reduced)."""
        means = {term: sums[term] / counts[term].clamp(min=1.0) for term in TERMS}
        total = sum(self.weights[term] * means[term] for term in TERMS)
        return total, means
