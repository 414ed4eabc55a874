"""Masks from scores: one shared step for every pruning method (Synaptic-Flow style).

A pruning method scores each prunable weight; ``mask_from_scores`` turns scores into boolean
keep-masks that remove exactly floor(pruning_rate * n) entries, lowest scores first.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Mapping

import torch

from .config import ConfigError, check_pruning_rate


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
