"""AdamW over stacked cohort parameters, with a learning rate and weight decay per member.

Same update as ``torch.optim.AdamW`` (decoupled decay, bias-corrected moments; a test compares
them), run over one flat buffer that holds every [K, ...] parameter, so an update is a handful
of vector operations whatever the number of tensors. Members may have their own lr and weight
decay. A weight whose gradient is always zero (pruned, masked in the forward pass) and that
starts at zero stays exactly zero: decay keeps 0 at 0, and its moments stay 0.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch


def flat_views(params: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Copy ``params`` into one flat buffer; return it and per-name views into it."""
    flat = torch.cat([t.detach().reshape(-1) for t in params.values()])
    views, start = {}, 0
    for name, tensor in params.items():
        views[name] = flat[start:start + tensor.numel()].view(tensor.shape)
        start += tensor.numel()
    return flat, views


class CohortAdamW:
    """Decoupled-weight-decay Adam with per-member hyperparameters over a flat buffer.

    ``params`` must be the views returned by :func:`flat_views` (in the same order), so that
    updating the buffer updates them in place.
    """

    def __init__(self, flat: torch.Tensor, params: Mapping[str, torch.Tensor],
                 lr: Sequence[float], weight_decay: Sequence[float],
                 betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8) -> None:
        self.flat = flat
        self.names = list(params)
        k_count = next(iter(params.values())).shape[0]
        if len(lr) != k_count or len(weight_decay) != k_count:
            raise ValueError("one lr and one weight_decay per member are needed")
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.exp_avg = torch.zeros_like(flat)
        self.exp_avg_sq = torch.zeros_like(flat)
        self.step_count = 0
        self.uniform = len(set(lr)) == 1 and len(set(weight_decay)) == 1
        if self.uniform:
            self.lr, self.decay = float(lr[0]), 1.0 - float(lr[0]) * float(weight_decay[0])
        else:
            # Per-element factors: member k's entries of every tensor get member k's values.
            per_member = lambda values: torch.cat([  # noqa: E731
                torch.tensor(values, dtype=torch.float64, device=flat.device)
                .repeat_interleave(t[0].numel()) for t in params.values()])
            self.lr_flat = per_member(lr)  # float64, like the Python floats of the uniform path
            self.decay_flat = (1.0 - self.lr_flat * per_member(weight_decay)).to(flat.dtype)

    @torch.no_grad()
    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        """One update given gradients of the summed member losses (same names as params)."""
        grad = torch.cat([grads[name].reshape(-1) for name in self.names])
        self.step_count += 1
        bias1 = 1.0 - self.beta1 ** self.step_count
        bias2_sqrt = math.sqrt(1.0 - self.beta2 ** self.step_count)
        self.exp_avg.lerp_(grad, 1.0 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
        denom = self.exp_avg_sq.sqrt().div_(bias2_sqrt).add_(self.eps)
        if self.uniform:
            self.flat.mul_(self.decay)
            self.flat.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)
        else:
            # Same float32 arithmetic as the uniform path, (step * m) / denom, so a member
            # trains bit for bit as it would alone.
            step = torch.div(self.lr_flat, -bias1).to(self.flat.dtype)
            self.flat.mul_(self.decay_flat)
            self.flat.addcdiv_(step.mul_(self.exp_avg), denom)

    def state_dict(self) -> dict:
        """Moments and step count (for resuming a run)."""
        return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone(),
                "step": self.step_count}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what ``state_dict`` returned."""
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.step_count = int(state["step"])
