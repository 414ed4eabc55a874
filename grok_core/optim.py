"""AdamW over stacked cohort parameters, with a learning rate and weight decay per member.

The update is ``torch.optim.AdamW``'s (decoupled decay, bias-corrected moments; a test compares
them). Each member's slices are updated by PyTorch's fused AdamW kernel (one pass over memory
instead of eight), one call per member with that member's lr and weight decay, so a member's
arithmetic is the same whether it trains alone or in a cohort. Where the fused kernel is missing
(older PyTorch, some devices) the same update runs as plain tensor operations.

A weight whose gradient is always zero (pruned, masked in the forward pass) and that starts at
zero stays exactly zero: decay keeps 0 at 0, and its moments stay 0.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch


def _fused_available(device: torch.device) -> bool:
    """True if torch._fused_adamw_ runs on this device (probed once on a tiny tensor)."""
    if not hasattr(torch, "_fused_adamw_"):
        return False
    try:
        one = torch.zeros(1, device=device)
        torch._fused_adamw_([one.clone()], [one.clone()], [one.clone()], [one.clone()], [],
                            [torch.ones((), device=device)], lr=0.1, beta1=0.9, beta2=0.9,
                            weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
        return True
    except (RuntimeError, NotImplementedError, TypeError):
        return False


class CohortAdamW:
    """Decoupled-weight-decay Adam with per-member hyperparameters, updating ``params`` in place."""

    def __init__(self, params: Mapping[str, torch.Tensor], lr: Sequence[float],
                 weight_decay: Sequence[float], betas: tuple[float, float] = (0.9, 0.98),
                 eps: float = 1e-8, fused: bool | None = None,
                 frozen: Sequence[str] = ()) -> None:
        self.params = dict(params)
        # tensors never updated (not even decayed): e.g. edge-popup's weights when only its
        # scores learn
        self.trained = [n for n in self.params if n not in set(frozen)]
        first = next(iter(self.params.values()))
        self.k_count = first.shape[0]
        if len(lr) != self.k_count or len(weight_decay) != self.k_count:
            raise ValueError("one lr and one weight_decay per member are needed")
        self.lr, self.weight_decay = [float(x) for x in lr], [float(x) for x in weight_decay]
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.exp_avg = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.step_count = 0
        self.fused = _fused_available(first.device) if fused is None else fused
        # the fused kernel reads the step count from a tensor, one per tensor it updates (it
        # only reads them: one tensor serves all)
        self._step_tensor = torch.zeros((), device=first.device)
        self._steps = [self._step_tensor] * len(self.trained)
        self._member_views()

    def _member_views(self) -> None:
        """Each member's rows of the stacked tensors, made once (``keep`` makes new tensors,
        and new views). One call per member, never one over several: the fused kernel's
        vector body and scalar tail round differently, so an element's arithmetic would depend
        on where a member's rows start."""
        self._views = [([self._member_rows(self.params[n], k) for n in self.trained],
                        [self._member_rows(self.exp_avg[n], k) for n in self.trained],
                        [self._member_rows(self.exp_avg_sq[n], k) for n in self.trained])
                       for k in range(self.k_count)]

    def _member_rows(self, stacked: torch.Tensor, k: int) -> torch.Tensor:
        """Member k's rows of a stacked tensor; a cohort of one's tensor whole (the same
        elements from the same start, without a view per tensor and step)."""
        return stacked if self.k_count == 1 else stacked[k]

    @torch.inference_mode()  # no autograd bookkeeping (the parameters stay normal tensors)
    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        """One update given gradients of the summed member losses (same names as params)."""
        self.step_count += 1
        self._step_tensor.fill_(self.step_count)
        for k, (params, exp_avgs, exp_avg_sqs) in enumerate(self._views):
            member_grads = [self._member_rows(grads[n], k) for n in self.trained]
            if self.fused:
                torch._fused_adamw_(params, member_grads, exp_avgs, exp_avg_sqs, [],
                                    self._steps, lr=self.lr[k], beta1=self.beta1,
                                    beta2=self.beta2, weight_decay=self.weight_decay[k],
                                    eps=self.eps, amsgrad=False, maximize=False)
            else:
                self._plain_step(params, member_grads, exp_avgs, exp_avg_sqs, k)

    def _plain_step(self, params, grads, exp_avgs, exp_avg_sqs, k: int) -> None:
        bias1 = 1.0 - self.beta1 ** self.step_count
        bias2_sqrt = math.sqrt(1.0 - self.beta2 ** self.step_count)
        for param, grad, exp_avg, exp_avg_sq in zip(params, grads, exp_avgs, exp_avg_sqs):
            param.mul_(1.0 - self.lr[k] * self.weight_decay[k])
            exp_avg.lerp_(grad, 1.0 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1.0 - self.beta2)
            denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-self.lr[k] / bias1)

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with only the members at ``positions`` (the others stopped): their parameters,
        moments and hyperparameters, as new stacked tensors in ``self.params``."""
        index = torch.tensor(list(positions), dtype=torch.long,
                             device=next(iter(self.params.values())).device)
        pick = lambda tensors: {n: t.index_select(0, index) for n, t in tensors.items()}  # noqa: E731
        self.params, self.exp_avg, self.exp_avg_sq = (
            pick(self.params), pick(self.exp_avg), pick(self.exp_avg_sq))
        self.lr = [self.lr[i] for i in positions]
        self.weight_decay = [self.weight_decay[i] for i in positions]
        self.k_count = len(self.lr)
        self._member_views()

    def state_dict(self) -> dict:
        """Moments and step count (for resuming a run)."""
        return {"exp_avg": {n: t.clone() for n, t in self.exp_avg.items()},
                "exp_avg_sq": {n: t.clone() for n, t in self.exp_avg_sq.items()},
                "step": self.step_count}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what ``state_dict`` returned."""
        for name in self.params:
            self.exp_avg[name].copy_(state["exp_avg"][name])
            self.exp_avg_sq[name].copy_(state["exp_avg_sq"][name])
        self.step_count = int(state["step"])


class CohortSGD:
    """torch.optim.SGD over stacked cohort parameters with a learning rate and weight decay per
    member: g += wd * theta (L2, coupled, as torch's), optional momentum buffer b = mu b + g,
    theta -= lr * (b or g). Same interface as :class:`CohortAdamW`."""

    def __init__(self, params: Mapping[str, torch.Tensor], lr: Sequence[float],
                 weight_decay: Sequence[float], momentum: float = 0.0,
                 frozen: Sequence[str] = ()) -> None:
        self.params = dict(params)
        self.trained = [n for n in self.params if n not in set(frozen)]
        self.k_count = next(iter(self.params.values())).shape[0]
        if len(lr) != self.k_count or len(weight_decay) != self.k_count:
            raise ValueError("one lr and one weight_decay per member are needed")
        self.lr, self.weight_decay = [float(x) for x in lr], [float(x) for x in weight_decay]
        self.momentum = momentum
        self.buffers: dict[str, torch.Tensor] = {}  # created on the first step, as torch's
        self.step_count = 0

    @torch.inference_mode()
    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        """One update given gradients of the summed member losses (same names as params):
        per member, torch's own arithmetic (d = g + wd p; b = mu b + d; p -= lr b) as a few
        multi-tensor (foreach) calls over that member's slices."""
        self.step_count += 1
        names = self.trained
        if self.momentum and not self.buffers:
            self.buffers = {n: torch.zeros_like(self.params[n]) for n in names}
            first = True
        else:
            first = False
        for k in range(self.k_count):
            params = [self.params[n][k] for n in names]
            updates = [grads[n][k] for n in names]
            if self.weight_decay[k]:
                updates = torch._foreach_add(updates, params, alpha=self.weight_decay[k])
            if self.momentum:
                buffers = [self.buffers[n][k] for n in names]
                if first:  # torch starts the buffer at the first update itself
                    torch._foreach_copy_(buffers, updates)
                else:
                    torch._foreach_mul_(buffers, self.momentum)
                    torch._foreach_add_(buffers, updates)
                updates = buffers
            torch._foreach_add_(params, updates, alpha=-self.lr[k])

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with only the members at ``positions`` (see ``CohortAdamW.keep``)."""
        index = torch.tensor(list(positions), dtype=torch.long,
                             device=next(iter(self.params.values())).device)
        self.params = {n: t.index_select(0, index) for n, t in self.params.items()}
        self.buffers = {n: t.index_select(0, index) for n, t in self.buffers.items()}
        self.lr = [self.lr[i] for i in positions]
        self.weight_decay = [self.weight_decay[i] for i in positions]
        self.k_count = len(self.lr)

    def state_dict(self) -> dict:
        """Momentum buffers and step count (for resuming a run)."""
        return {"buffers": {n: t.clone() for n, t in self.buffers.items()},
                "step": self.step_count}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what ``state_dict`` returned."""
        self.buffers = {n: t.clone().to(self.params[n].device)
                        for n, t in state["buffers"].items()}
        self.step_count = int(state["step"])


def build_optimizer(optim, params: Mapping[str, torch.Tensor], lr: Sequence[float],
                    weight_decay: Sequence[float], frozen: Sequence[str] = ()):
    """The cohort optimiser ``optim.name`` (an ``OptimConfig``) over stacked ``params``."""
    if optim.name == "sgd":
        return CohortSGD(params, lr, weight_decay, momentum=optim.momentum, frozen=frozen)
    return CohortAdamW(params, lr=lr, weight_decay=weight_decay, betas=(optim.beta1, optim.beta2),
                       eps=optim.eps, frozen=frozen)
