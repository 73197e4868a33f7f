"""AdamW (Loshchilov & Hutter 2019), computed as PyTorch's `torch.optim.AdamW` computes it on a CPU.

Why not PyTorch's own class: every method of its `Optimizer` base class (the constructor's
`add_param_group`, `zero_grad`, `step`, `state_dict`) is wrapped so that its first call imports
`torch._dynamo`, the compiler this project never uses. That import is 2.4 s of every train.py
start on these machines (measured with `python -X importtime`: torch 2.3 s, torch._dynamo 2.4 s),
a fifth of a short run and of each fold of a benchmark on a CPU.

The arithmetic is PyTorch's AdamW (decoupled weight decay, no amsgrad), operation for operation,
on the path PyTorch takes by default for the parameters' device: its single-tensor loop
(`torch.optim.adam._single_tensor_adam`) on a CPU, its foreach kernels (`_multi_tensor_adam`, a
handful of launches a step instead of several per tensor) on a GPU. So a run repeats bitwise what
`torch.optim.AdamW` gives (tests/test_model.py checks both paths on a CPU, over steps with two
groups, changing rates and a parameter without a gradient). The state dict has PyTorch's layout,
so checkpoints written with `torch.optim.AdamW` resume here and the other way round.
"""
from __future__ import annotations

import torch

# the devices where PyTorch's AdamW takes its foreach path by default (torch.utils._foreach_utils)
FOREACH_DEVICES = ("cuda", "xpu", "mtia", "privateuseone")
# the options PyTorch's AdamW keeps in each group of its state dict, at the values this one computes
TORCH_GROUP_OPTIONS = {"amsgrad": False, "foreach": None, "maximize": False, "capturable": False,
                       "differentiable": False, "fused": None, "decoupled_weight_decay": True}


class AdamW:
    """`AdamW(groups, lr, betas, eps, weight_decay)`: groups as PyTorch takes them, dicts with
    "params" and any option of their own (train.py's "lr_scale" rides along untouched).
    `foreach` True or False forces a path, as PyTorch's argument of that name does."""

    def __init__(self, groups, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, foreach: bool | None = None):
        self.foreach = foreach          # None: as PyTorch chooses, by the parameters' device
        groups = list(groups)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        self.param_groups = [{**defaults, **group, "params": list(group["params"])} for group in groups]
        self.state: dict[torch.Tensor, dict] = {}
        params = [p for group in self.param_groups for p in group["params"]]
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter is in more than one group")

    def zero_grad(self) -> None:
        """Gradients to None, as PyTorch's default (set_to_none) does."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def _state(self, p: torch.Tensor) -> dict:
        state = self.state.get(p)
        if not state:
            # as PyTorch: the step count a float32 tensor on the CPU, the moments like the parameter
            state = self.state[p] = {"step": torch.tensor(0.0, dtype=torch.float32),
                                     "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                     "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return state

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            foreach = self.foreach if self.foreach is not None else \
                bool(params) and all(p.device.type in FOREACH_DEVICES for p in params)
            if not foreach:
                for p in params:
                    self._single_tensor(group, p)
                continue
            by_kind: dict = {}
            for p in params:                        # PyTorch's foreach path: one pass per device and dtype
                by_kind.setdefault((p.device, p.dtype), []).append(p)
            for same in by_kind.values():
                self._foreach(group, same)

    def _single_tensor(self, group: dict, p: torch.Tensor) -> None:
        beta1, beta2 = group["betas"]
        lr, weight_decay, eps = group["lr"], group["weight_decay"], group["eps"]
        grad = p.grad
        state = self._state(p)
        exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        step_t += 1
        if weight_decay != 0:
            p.mul_(1 - lr * weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = step_t.item()
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(eps)
        p.addcdiv_(exp_avg, denom, value=-step_size)

    def _foreach(self, group: dict, params: list) -> None:
        beta1, beta2 = group["betas"]
        lr, weight_decay, eps = group["lr"], group["weight_decay"], group["eps"]
        grads = [p.grad for p in params]
        states = [self._state(p) for p in params]
        exp_avgs, exp_avg_sqs = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
        for s in states:
            s["step"] += 1
        if weight_decay != 0:
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        steps = [s["step"].item() for s in states]
        step_sizes = [(lr / (1 - beta1 ** step)) * -1 for step in steps]
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, [(1 - beta2 ** step) ** 0.5 for step in steps])
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denom, step_sizes)

    def state_dict(self) -> dict:
        """PyTorch's layout: state by each parameter's index over the groups in order, and each
        group's options with "params" the indices of its parameters."""
        index, groups, start = {}, [], 0
        for group in self.param_groups:
            index.update({id(p): start + k for k, p in enumerate(group["params"])})
            groups.append({**TORCH_GROUP_OPTIONS, "foreach": self.foreach,
                           **{k: v for k, v in group.items() if k != "params"},
                           "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {"state": {index[id(p)]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """A state dict of this class or of `torch.optim.AdamW` over the same groups of parameters
        (the path, single-tensor or foreach, stays this optimiser's own)."""
        saved = state_dict["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the optimiser state was saved for other groups of parameters "
                             f"({[len(g['params']) for g in saved]} against {[len(g['params']) for g in self.param_groups]})")
        if any(g.get("amsgrad") or g.get("maximize") or g.get("decoupled_weight_decay") is False for g in saved):
            raise ValueError("the optimiser state is not plain AdamW's (amsgrad, maximize or coupled weight decay)")
        params = [p for group in self.param_groups for p in group["params"]]
        by_index = dict(zip((i for g in saved for i in g["params"]), params))
        self.state = {}
        for key, values in state_dict["state"].items():
            p = by_index[int(key)]
            self.state[p] = {"step": values["step"].detach().to(dtype=torch.float32, device="cpu").clone(),
                             **{k: values[k].detach().to(dtype=p.dtype, device=p.device).clone()
                                for k in ("exp_avg", "exp_avg_sq")}}
        for group, old in zip(self.param_groups, saved):
            group.update({k: v for k, v in old.items() if k != "params" and k not in TORCH_GROUP_OPTIONS})
            group["betas"] = tuple(group["betas"])
