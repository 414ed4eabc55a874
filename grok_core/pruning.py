"""Pruning methods: one scorer per method, one shared mask step (Synaptic-Flow style).

A pruning method scores each prunable weight (``score``: magnitude, random, SNIP, GraSP,
SynFlow); ``mask_from_scores`` turns scores into boolean keep-masks that remove exactly
floor(pruning_rate * n) entries, lowest scores first; ``prune`` does both (SynFlow iteratively).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Mapping

import torch

from .errors import ConfigError, check_pruning_rate, choice


def count_to_prune(pruning_rate: float, n: int) -> int:
    """floor(pruning_rate * n), computed on the decimal value of the rate (0.29 * 100 = 29)."""
    return math.floor(Fraction(repr(float(pruning_rate))) * n)


def _lowest(flat_scores: torch.Tensor, n_remove: int) -> torch.Tensor:
    """Boolean keep-mask removing the n_remove lowest entries; ties go in index order."""
    keep = torch.ones(flat_scores.numel(), dtype=torch.bool)
    if n_remove > 0:
        order = torch.argsort(flat_scores.detach().reshape(-1).double().cpu(), stable=True)
        keep[order[:n_remove]] = False
    return keep


def mask_from_scores(scores: Mapping[str, torch.Tensor], pruning_rate: float,
                     scope: str = "global") -> dict[str, torch.Tensor]:
    """Boolean keep-masks (same shapes as ``scores``) removing the lowest-scored entries.

    ``scope="global"`` removes floor(pruning_rate * n) entries with n counted over all tensors;
    ``scope="layer"`` removes floor(pruning_rate * n_i) from each tensor i. Ties are broken
    deterministically: among equal scores, the entry that comes first (tensors in dict order,
    then flat index) is removed first. Masks are returned on the CPU.
    """
    check_pruning_rate(pruning_rate)
    if scope not in ("global", "layer"):
        raise ConfigError(f"prune.scope: unknown value {scope!r}; choose one of global, layer")
    names = list(scores)
    if scope == "layer":
        return {name: _lowest(scores[name], count_to_prune(pruning_rate, scores[name].numel()))
                .reshape(scores[name].shape) for name in names}
    flat = torch.cat([scores[name].detach().reshape(-1).double().cpu() for name in names])
    keep = _lowest(flat, count_to_prune(pruning_rate, flat.numel()))
    masks, start = {}, 0
    for name in names:
        size = scores[name].numel()
        masks[name] = keep[start:start + size].reshape(scores[name].shape)
        start += size
    return masks


def magnitude_scores(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """|theta| per weight: the lottery-ticket score."""
    return {name: tensor.detach().abs() for name, tensor in weights.items()}


def magnitude_mask(weights: Mapping[str, torch.Tensor], pruning_rate: float,
                   scope: str = "global") -> dict[str, torch.Tensor]:
    """Keep-mask of the largest-magnitude weights."""
    return mask_from_scores(magnitude_scores(weights), pruning_rate, scope)


# --- pruning methods: one scorer per method, one shared mask step -----------------------------
# A scorer gives one member's scores (higher = keep) for the model's prunable tensors:
# scorer(model, params, inputs, labels, seed) with ``params`` the member's own (unstacked)
# tensors and ``inputs`` / ``labels`` the scoring data (the training split). Adding a method is
# one function here plus its name in ``grok_core.config.PRUNE_METHODS``.
Scorer = Callable[..., dict[str, torch.Tensor]]
SCORERS: dict[str, Scorer] = {}
GRASP_TEMPERATURE = 200.0  # GraSP divides the logits by this before the loss (reference code)
SYNFLOW_ROUNDS = 100       # density (1 - k)^(j / 100) after round j (Tanaka et al.)
DATA_FREE_METHODS = ("magnitude", "random", "synflow")  # score without the training data


def _register(name: str) -> Callable[[Scorer], Scorer]:
    def add(function: Scorer) -> Scorer:
        SCORERS[name] = function
        return function
    return add


def _one_member(params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A member's tensors as a cohort of one ([1, ...]), for the stacked models."""
    return {name: tensor[None] for name, tensor in params.items()}


def _leaves(params: Mapping[str, torch.Tensor], dtype=torch.float64) -> dict[str, torch.Tensor]:
    return {n: t.detach().to(dtype).clone().requires_grad_(True) for n, t in params.items()}


def _loss(model, params: Mapping[str, torch.Tensor], inputs: torch.Tensor,
          labels: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    logits = model.logits(_one_member(params), inputs) / temperature
    return model.loss_and_accuracy(logits, labels, torch.float64)[0].sum()


@_register("magnitude")
def magnitude_scorer(model, params, inputs=None, labels=None, seed: int = 0):
    """|theta|: the lottery-ticket score."""
    return magnitude_scores({n: params[n] for n in model.prunable})


@_register("random")
def random_scorer(model, params, inputs=None, labels=None, seed: int = 0):
    """Seeded standard-normal scores (a random mask of the same sparsity)."""
    generator = torch.Generator().manual_seed(int(seed))
    return {n: torch.randn(params[n].shape, generator=generator, dtype=torch.float64)
            for n in model.prunable}


@_register("snip")
def snip_scorer(model, params, inputs, labels, seed: int = 0):
    """SNIP (Lee et al.): |theta * dL/dtheta| on the scoring data."""
    leaves = _leaves(params)
    names = list(model.prunable)
    grads = torch.autograd.grad(_loss(model, leaves, inputs, labels), [leaves[n] for n in names])
    return {n: (leaves[n] * g).detach().abs() for n, g in zip(names, grads)}


@_register("grasp")
def grasp_scorer(model, params, inputs, labels, seed: int = 0):
    """GraSP (Wang et al.): theta * (H g), with the loss of logits / 200; the lowest are removed
    (the reference code's sign: removing them preserves the gradient flow best)."""
    leaves = _leaves(params)
    names = list(model.prunable)
    tensors = [leaves[n] for n in names]
    first = torch.autograd.grad(_loss(model, leaves, inputs, labels, GRASP_TEMPERATURE), tensors)
    second = torch.autograd.grad(_loss(model, leaves, inputs, labels, GRASP_TEMPERATURE), tensors,
                                 create_graph=True)
    inner = sum((g2 * g1.detach()).sum() for g1, g2 in zip(first, second))
    hessian_grad = torch.autograd.grad(inner, tensors)
    return {n: (leaves[n] * hg).detach() for n, hg in zip(names, hessian_grad)}


def synflow_round(model, params, inputs=None, labels=None, seed: int = 0,
                  ones_input: bool = True):
    """One round of SynFlow (Tanaka et al.): |theta * dR/dtheta| where R is the summed output of
    the network with every weight replaced by |theta|. The input is all ones: for the models
    here, whose input is tokens, the all-ones one-hot vector, i.e. every row of the embedding
    table summed at each position; ``ones_input=False`` feeds the scoring batch instead (the
    authors' variant)."""
    leaves = _leaves({n: t.abs() for n, t in params.items()})
    if ones_input:
        forward, batch = model.ones_input(leaves)
    else:
        forward, batch = leaves, inputs
    total = model.logits(_one_member(forward), batch).sum()
    names = list(model.prunable)
    grads = torch.autograd.grad(total, [leaves[n] for n in names])
    return {n: (leaves[n] * g).detach().abs() for n, g in zip(names, grads)}


SCORERS["synflow"] = synflow_round


def score(method: str, model, params: Mapping[str, torch.Tensor], inputs: torch.Tensor,
          labels: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """One round of ``method``'s scores (higher = keep) for one member's ``params`` over the
    model's prunable tensors; ``inputs`` / ``labels`` are the scoring data."""
    if method not in SCORERS:
        choice("prune.method", method, SCORERS)
    return SCORERS[method](model, params, inputs, labels, seed=seed)


def prune(method: str, model, params: Mapping[str, torch.Tensor], pruning_rate: float,
          inputs: torch.Tensor, labels: torch.Tensor, scope: str = "global", seed: int = 0,
          synflow_ones: bool = True) -> dict[str, torch.Tensor]:
    """``method``'s keep-mask removing exactly floor(pruning_rate * n) weights (per tensor for
    ``scope='layer'``): one round of scores, then ``mask_from_scores``; SynFlow iterates
    ``SYNFLOW_ROUNDS`` rounds on the masked network, density (1 - k)^(j / rounds) after round
    j, pruned weights staying pruned."""
    check_pruning_rate(pruning_rate)
    prunable = {n: params[n] for n in model.prunable}
    if method != "synflow" or pruning_rate == 0:
        return mask_from_scores(score(method, model, params, inputs, labels, seed),
                                pruning_rate, scope)
    masks = {n: torch.ones(t.shape, dtype=torch.bool) for n, t in prunable.items()}
    for round_ in range(1, SYNFLOW_ROUNDS + 1):
        masked = {**params, **{n: params[n] * masks[n] for n in masks}}
        scores = synflow_round(model, masked, inputs, labels, ones_input=synflow_ones)
        scores = {n: s.masked_fill(~masks[n], -math.inf) for n, s in scores.items()}
        rate = pruning_rate if round_ == SYNFLOW_ROUNDS else \
            1 - (1 - pruning_rate) ** (round_ / SYNFLOW_ROUNDS)
        masks = mask_from_scores(scores, rate, scope)
    return masks
