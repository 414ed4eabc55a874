"""AdamW over stacked cohort parameters, with a learning rate and weight decay per member.

Same update as ``torch.optim.AdamW`` (decoupled decay, bias-corrected moments; a test compares
them), written over [K, ...] tensors so each member can have its own lr and weight decay. A weight
whose gradient is always zero (pruned, masked in the forward pass) and that starts at zero stays
exactly zero: decay keeps 0 at 0, and its moments stay 0.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch


class CohortAdamW:
    """Decoupled-weight-decay Adam with per-member hyperparameters."""

    def __init__(self, params: Mapping[str, torch.Tensor], lr: Sequence[float],
                 weight_decay: Sequence[float], betas: tuple[float, float] = (0.9, 0.98),
                 eps: float = 1e-8) -> None:
        self.params = dict(params)
        first = next(iter(self.params.values()))
        k_count, device = first.shape[0], first.device
        if len(lr) != k_count or len(weight_decay) != k_count:
            raise ValueError("one lr and one weight_decay per member are needed")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self._lr = torch.tensor(lr, dtype=torch.float64, device=device)
        # 1 - lr * wd in double, then float32: matches torch's scalar arithmetic to the last ulp
        self._decay = {n: self._per_member(1.0 - self._lr * torch.tensor(
            weight_decay, dtype=torch.float64, device=device), p) for n, p in self.params.items()}
        self.exp_avg = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.step_count = 0

    @staticmethod
    def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        """One update given gradients of the summed member losses."""
        self.step_count += 1
        bias1 = 1.0 - self.beta1 ** self.step_count
        bias2_sqrt = math.sqrt(1.0 - self.beta2 ** self.step_count)
        step_size = self._lr / bias1
        for name, param in self.params.items():
            grad = grads[name]
            exp_avg, exp_avg_sq = self.exp_avg[name], self.exp_avg_sq[name]
            param.mul_(self._decay[name])
            exp_avg.lerp_(grad, 1.0 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
            denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
            param.sub_(exp_avg.div(denom).mul_(self._per_member(step_size, param)))

    def state_dict(self) -> dict:
        """Moments and step count (for resuming a run)."""
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "step": self.step_count}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what ``state_dict`` returned."""
        for name in self.params:
            self.exp_avg[name].copy_(state["exp_avg"][name])
            self.exp_avg_sq[name].copy_(state["exp_avg_sq"][name])
        self.step_count = int(state["step"])
