"""The cohort machinery every model shares: parameter specs, seeded init, masks, stacking.

A model here is a pure function of a parameter dict whose tensors have a leading member
dimension K, so K independent networks that share an architecture train as one: each
``logits`` call is a handful of batched matmuls instead of K small models. Member k's slice
``params[name][k]`` is exactly the network a solo run of that member would have. Models declare
which tensors are prunable (``ParamSpec``); masks multiply those tensors in the forward pass
(``apply_masks``), so pruned weights get zero gradient.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from ..config import ModelConfig
from .losses import (cross_entropy_and_accuracy, hinge_and_accuracy, mse_and_accuracy,
                     regression_mse_and_r2)

Params = dict[str, torch.Tensor]
# a model's training pass bound to its weights (``CohortModel.training_pass``): (inputs,
# labels, with_loss) -> (loss [K], accuracy [K], gradients)
TrainingPass = Callable[[torch.Tensor, torch.Tensor, bool],
                        tuple[torch.Tensor, torch.Tensor, Params]]


@dataclass(frozen=True)
class ParamSpec:
    """Shape of one member's tensor, its fan-in for N(0, (kappa/sqrt(fan_in))^2) init
    (fan_in None: initialised to zero), and whether pruning may remove its entries."""

    shape: tuple[int, ...]
    fan_in: int | None
    prunable: bool


class CohortModel:
    """Base class: parameter specs, seeded per-member init, and a stacked forward."""

    specs: dict[str, ParamSpec]
    embedding: str  # the token embedding table [vocab, d] (SynFlow's all-ones input sums its rows)
    # On a CPU, compute a cohort this many members at a time (None: all at once); see
    # ``grok_core.training.cohort_loss_and_grads``. For models whose per-example tensors of a
    # large cohort outgrow the core's cache; such a model's ``loss_and_grads`` takes
    # ``grads_out`` (tensors to write the gradients into).
    cpu_members_at_a_time: int | None = None
    # The losses whose gradients this model's ``loss_and_grads`` computes by hand (the others
    # take the generic autograd path); see ``needs_autograd``.
    losses_by_hand: tuple[str, ...] = ()

    def __init__(self, config: ModelConfig, vocab: int, classes: int,
                 loss: str = "cross_entropy") -> None:
        self.config = config
        self.vocab = vocab
        self.classes = classes
        self.loss = loss  # 'cross_entropy', 'mse' (one-hot targets, or the value) or 'hinge'

    @classmethod
    def build(cls, config: ModelConfig, vocab: int, classes: int,
              loss: str = "cross_entropy", task: str = "modular") -> "CohortModel":
        """The model as ``build_model`` makes it (most models do not depend on the task)."""
        return cls(config, vocab, classes, loss)

    def ones_input(self, params: Mapping[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(parameters, one input) giving the network's output on the all-ones input (SynFlow):
        for token models the all-ones one-hot vector, i.e. every embedding row summed."""
        table = self.embedding
        return {**params, table: params[table].sum(dim=-2, keepdim=True)}, torch.zeros(
            1, 2, dtype=torch.long)

    def loss_and_accuracy(self, logits: torch.Tensor, labels: torch.Tensor,
                          loss_dtype: torch.dtype = torch.float32
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member mean loss [K] (this model's loss) and accuracy [K] of [K, N, C] logits."""
        if labels.is_floating_point():  # a regression's targets
            return regression_mse_and_r2(logits, labels, loss_dtype)
        if self.loss == "mse":
            return mse_and_accuracy(logits, labels, loss_dtype)
        if self.loss == "hinge":
            return hinge_and_accuracy(logits, labels, loss_dtype)
        return cross_entropy_and_accuracy(logits, labels, loss_dtype)

    @property
    def needs_autograd(self) -> bool:
        """Whether ``loss_and_grads`` takes its gradients from autograd: unless this model
        computes them by hand for its loss (``losses_by_hand``). Where it does not, the training
        loop runs it in ``torch.inference_mode``: no autograd bookkeeping per operation, 2-4%
        of a step at the paper's size, the same numbers."""
        return self.loss not in self.losses_by_hand

    @property
    def prunable(self) -> tuple[str, ...]:
        """Names of the tensors a pruning method may mask."""
        return tuple(name for name, spec in self.specs.items() if spec.prunable)

    def init_member(self, seed: int) -> Params:
        """theta_0 of one member: a generator seeded with ``seed`` draws each tensor in order."""
        generator = torch.Generator().manual_seed(int(seed))
        params = {}
        for name, spec in self.specs.items():
            if spec.fan_in is None:
                params[name] = torch.zeros(spec.shape)
            else:
                std = self.config.init_scale / math.sqrt(spec.fan_in)
                params[name] = torch.randn(spec.shape, generator=generator) * std
        return params

    def init_cohort(self, seeds: Sequence[int]) -> Params:
        """Stacked theta_0 for members with the given seeds."""
        return stack_members([self.init_member(seed) for seed in seeds])

    def logits(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """[K, N, classes] logits for ``inputs`` [N, 2] of token ids (params already masked)."""
        raise NotImplementedError

    def training_pass(self, params: Mapping[str, torch.Tensor],
                      masks: Mapping[str, torch.Tensor] | None,
                      loss_dtype: torch.dtype) -> TrainingPass | None:
        """``loss_and_grads`` with gradients, bound to these weights for a training loop's steps
        (they change in place between calls): a callable (inputs, labels, with_loss) ->
        (loss, accuracy, gradients) of their current values, the same numbers, its outputs
        reused from call to call (read them before the next call). None where the model has
        no bound form; the loop then calls ``loss_and_grads``."""
        return None

    def loss_and_grads(self, params: Mapping[str, torch.Tensor],
                       masks: Mapping[str, torch.Tensor] | None, inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype = torch.float32,
                       with_grads: bool = True, with_loss: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, Params | None]:
        """Per-member mean cross-entropy [K], accuracy [K] and, if asked, the gradients of the
        summed member losses with respect to the raw (unmasked) ``params``. Without
        ``with_loss`` a model may skip the loss and return NaN for it (a training step's loss
        is read only at evaluations); the accuracy is always computed.

        Generic version: autograd through ``logits``. Models may override it with an exact
        hand-written backward (the MLP does; a test compares the two).
        """
        if not with_grads:
            with torch.no_grad():
                loss, acc = self.loss_and_accuracy(
                    self.logits(apply_masks(params, masks), inputs), labels, loss_dtype)
            return loss, acc, None
        leaves = {n: t.detach().requires_grad_(True) for n, t in params.items()}
        loss, acc = self.loss_and_accuracy(
            self.logits(apply_masks(leaves, masks), inputs), labels, loss_dtype)
        grads = torch.autograd.grad(loss.sum(), list(leaves.values()))
        return loss.detach(), acc, dict(zip(leaves, grads))


def stack_members(members: Sequence[Mapping[str, torch.Tensor]]) -> Params:
    """Stack per-member dicts into one dict of [K, ...] tensors."""
    return {name: torch.stack([m[name] for m in members]) for name in members[0]}


def member_slice(params: Mapping[str, torch.Tensor], k: int) -> Params:
    """Member k's own tensors (copies, detached)."""
    return {name: tensor[k].detach().clone() for name, tensor in params.items()}


def member_rows(tensors: Mapping[str, torch.Tensor] | None, start: int, count: int
                ) -> Params | None:
    """Members start .. start + count - 1 of stacked tensors (views; None stays None)."""
    return None if tensors is None else {n: t[start:start + count] for n, t in tensors.items()}


def apply_masks(params: Mapping[str, torch.Tensor],
                masks: Mapping[str, torch.Tensor] | None) -> Mapping[str, torch.Tensor]:
    """Effective weights W * m for masked tensors; unmasked tensors pass through."""
    if not masks:
        return params
    return {name: params[name] * masks[name] if name in masks else params[name]
            for name in params}


def masked_in_place(params: Mapping[str, torch.Tensor],
                    masks: Mapping[str, torch.Tensor] | None
                    ) -> tuple[Params, Callable[[], None]]:
    """The effective weights (as ``apply_masks``), the masked ones in tensors of their own, and
    a function that refreshes those from ``params``' current values (W * m, in place): for a
    pass bound to the effective weights' memory (``CohortModel.training_pass``)."""
    effective = dict(apply_masks(params, masks))
    refreshed = [(params[name], mask, effective[name]) for name, mask in (masks or {}).items()]

    def refresh() -> None:
        for weight, mask, masked in refreshed:
            torch.mul(weight, mask, out=masked)
    return effective, refresh


def masked_gradients(grads: Params, masks: Mapping[str, torch.Tensor] | None) -> Params:
    """Gradients of the raw weights from those of the effective ones: masked tensors' multiplied
    by their masks (in place; pruned weights get zero)."""
    for name, mask in (masks or {}).items():
        grads[name].mul_(mask)
    return grads


def product_transposed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """b^T a^T, contiguous, for a [K, C, N] and b [K, N, h] with a long N: the two models' weight
    gradient from their per-example rows. On a CPU in float32 it is formed as (a b)^T, ~1.2-1.5x
    faster (the matmul reads b^T's transposed layout slowly at these shapes) and the same bits
    (tests/test_engine.py checks it over shapes and cohort sizes; the stored runs were trained
    with b^T a^T). Elsewhere (float64 there differs in the last bits) as b^T a^T."""
    if a.device.type == "cpu" and a.dtype == torch.float32:
        return torch.bmm(a, b).transpose(1, 2).contiguous()
    return torch.bmm(b.transpose(1, 2), a.transpose(1, 2))


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[:, index] for a [K, rows, d] table, as one index_select on a [K * rows, d] view
    (its backward is a fast scatter along dim 0; along dim 1 it is several times slower)."""
    k_count, rows, width = table.shape
    offsets = torch.arange(k_count, device=index.device)[:, None] * rows
    flat_index = (index[None] + offsets).reshape(-1)
    return table.reshape(k_count * rows, width).index_select(0, flat_index).view(
        k_count, -1, width)


def scatter_rows(index: torch.Tensor, values: torch.Tensor, rows: int,
                  into: torch.Tensor | None = None, alpha: float = 1.0) -> torch.Tensor:
    """[K, rows, width] with alpha * values[:, n] added to row index[n] (``into``, if given,
    gathers them too): the backward of ``gather_rows``, one index_add along dim 0 of a flat
    view."""
    k_count, _, width = values.shape
    if into is None:
        into = torch.zeros(k_count, rows, width, dtype=values.dtype, device=values.device)
    offsets = torch.arange(k_count, device=index.device)[:, None] * rows
    into.view(k_count * rows, width).index_add_(0, (index[None] + offsets).reshape(-1),
                                                values.reshape(-1, width), alpha=alpha)
    return into
