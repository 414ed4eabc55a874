"""Edge-popup (Ramanujan et al. 2020) for a cohort: learned scores choose each tensor's weights.

Every prunable tensor ``W`` gets a score tensor ``W.score`` of the same shape, stored beside the
weights in the stacked parameters (so the optimiser, checkpoints of the training state and
resumption treat scores like any other tensor). The forward pass uses ``W * m`` where ``m`` keeps,
in each tensor, the ``keep`` entries of largest |score| (``keep`` from the member's pruning rate,
as for a ticket with ``prune.scope=layer``). The mask is a step function of the scores, so the
gradient is passed straight through: dL/dscore = dL/d(W * m) * W, for kept and removed entries
alike, which is how a removed weight can come back ("pop up").

``ScoreForward`` implements the loop's forward interface (``grok_core.training.FixedMasks`` is
the other one): loss and gradients of the raw parameters, effective weights, dropping members.
With frozen weights (variant ``ep``) the optimiser skips the weight tensors entirely, so they stay
bitwise what they were.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import torch

from .models import CohortModel, Params, apply_masks
from .pruning import count_to_prune

SCORE_SUFFIX = ".score"


def score_name(name: str) -> str:
    """The score tensor of weight tensor ``name``."""
    return name + SCORE_SUFFIX


def initial_scores(model: CohortModel, seed: int) -> Params:
    """Kaiming-uniform scores for one member (PyTorch's default for a linear layer, as in the
    reference code: U(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn from a generator seeded with
    ``seed`` and kept apart from the weights' own draws."""
    generator = torch.Generator().manual_seed(int(seed) + 1_000_003)
    scores = {}
    for name in model.prunable:
        spec = model.specs[name]
        bound = 1.0 / math.sqrt(spec.fan_in)
        scores[score_name(name)] = (torch.rand(spec.shape, generator=generator) * 2 - 1) * bound
    return scores


def keep_counts(model: CohortModel, pruning_rates: Sequence[float]) -> dict[str, list[int]]:
    """Per prunable tensor, how many entries each member keeps at its pruning rate."""
    counts = {}
    for name in model.prunable:
        n = math.prod(model.specs[name].shape)
        counts[name] = [n - count_to_prune(rate, n) for rate in pruning_rates]
    return counts


def top_score_masks(params: Mapping[str, torch.Tensor], counts: Mapping[str, Sequence[int]],
                    selector: Optional["ThresholdTracker"] = None) -> dict[str, torch.Tensor]:
    """Float (0 / 1) keep-masks [K, ...]: per member and tensor, the ``counts[name][k]`` entries of
    largest |score| (entries tied with the smallest kept score are kept too; scores are
    continuous, so ties do not occur in practice). A ``selector`` finds the same thresholds
    faster from the previous step's."""
    masks = {}
    for name, per_member in counts.items():
        magnitude = params[score_name(name)].detach().abs()
        flat = magnitude.reshape(magnitude.shape[0], -1)
        threshold = (selector.thresholds(name, flat, per_member) if selector is not None
                     else _thresholds(flat, per_member))
        masks[name] = (flat >= threshold).to(flat.dtype).view_as(magnitude)
    return masks


class ThresholdTracker:
    """The exact per-row keep-th largest |score|, found near the previous step's.

    For any band [low, high] of values: if fewer than ``keep`` values lie above it and at
    least ``keep`` at or above its bottom, the keep-th largest lies in the band, and a
    selection among the band's few values finds it exactly. Scores move little per step, so a
    narrow band around the previous threshold usually holds it; its half-width adapts (wider
    after a miss, narrower while it holds many values). A miss after a few widenings, or no
    previous step, runs the full selection: the masks are always those of a full selection.
    CPU only (on a GPU the per-row loop would synchronise)."""

    TRIES = 3         # band widenings (x4 each) before the full selection
    MAX_SHARE = 0.05  # a band holding more of the row than this is narrowed next time

    def __init__(self) -> None:
        self.previous: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def thresholds(self, name: str, flat: torch.Tensor, per_member: Sequence[int]
                   ) -> torch.Tensor:
        """[K, 1] thresholds of ``flat`` [K, n] (|scores|) for these keep counts."""
        last = self.previous.get(name)
        if last is None or last[0].shape[0] != flat.shape[0] or flat.device.type != "cpu":
            threshold = _thresholds(flat, per_member)
            width = threshold.abs() * 0.01 + 1e-12
        else:
            threshold, width = self._near(flat, *last, per_member)
        self.previous[name] = (threshold, width)
        return threshold

    def _near(self, flat: torch.Tensor, old: torch.Tensor, old_width: torch.Tensor,
              per_member: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        n = flat.shape[1]
        threshold, width = torch.empty_like(old), old_width.clone()
        for k, keep in enumerate(per_member):
            row, centre, half = flat[k], float(old[k]), float(width[k])
            found = None
            for _ in range(self.TRIES if 0 < keep < n else 0):
                above = torch.count_nonzero(row > centre + half).item()
                band = row[(row >= centre - half) & (row <= centre + half)]
                size = band.numel()
                rank = keep - above  # the threshold's rank (from the top) within the band
                if 1 <= rank <= size:
                    found = band.kthvalue(size - rank + 1).values
                    if size > self.MAX_SHARE * n:
                        half *= 0.5
                    break
                half *= 4.0
            if found is None:
                found = _thresholds(flat[k:k + 1], [keep])[0, 0]
                half = abs(float(found)) * 0.01 + 1e-12
            threshold[k], width[k] = found, half
        return threshold, width


def _thresholds(flat: torch.Tensor, per_member: Sequence[int]) -> torch.Tensor:
    """[K, 1]: row k's per_member[k]-th largest value (+inf where it keeps nothing)."""
    n = flat.shape[1]
    distinct = set(per_member)
    if len(distinct) == 1 and 0 not in distinct:  # the usual cohort: one rate, one selection
        return flat.kthvalue(n - per_member[0] + 1, dim=1, keepdim=True).values
    threshold = torch.empty(flat.shape[0], 1, dtype=flat.dtype, device=flat.device)
    for keep in sorted(distinct):
        index = torch.tensor([k for k, c in enumerate(per_member) if c == keep],
                             device=flat.device)
        if keep == 0:
            threshold[index] = math.inf
        else:  # the keep-th largest is the (n - keep + 1)-th smallest
            threshold[index] = flat.index_select(0, index).kthvalue(
                n - keep + 1, dim=1, keepdim=True).values
    return threshold


class ScoreForward:
    """The loop's forward for edge-popup members (module docstring)."""

    def __init__(self, model: CohortModel, pruning_rates: Sequence[float],
                 train_weights: bool) -> None:
        self.model = model
        self.counts = keep_counts(model, pruning_rates)
        self.train_weights = train_weights
        # tensors the optimiser leaves alone: the weights when only scores learn (EP w/o WD)
        self.frozen = () if train_weights else tuple(model.specs)
        self.tracker = ThresholdTracker()
        self._fresh = None  # the effective weights of the last loss, until the next update

    def masks(self, params: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The current keep-masks (from the scores in ``params``)."""
        return top_score_masks(params, self.counts, self.tracker)

    def effective(self, params: Mapping[str, torch.Tensor]) -> Params:
        """W * m for prunable tensors, others as they are; scores left out. Between a loss and
        the next ``updated()`` these are the weights that loss used (no new selection)."""
        if self._fresh is not None:
            return self._fresh
        return self._effective(params, self.masks(params))

    def updated(self) -> None:
        """The optimiser has changed the parameters: the next effective weights are new."""
        self._fresh = None

    def _effective(self, params: Mapping[str, torch.Tensor],
                   masks: Mapping[str, torch.Tensor]) -> Params:
        # float masks and a product (``apply_masks``): several times faster than torch.where
        return dict(apply_masks({name: params[name] for name in self.model.specs}, masks))

    def loss_and_grads(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype, with_grads: bool = True,
                       with_loss: bool = True):
        """Loss [K] (NaN if not ``with_loss`` and the model skips it), accuracy [K] and
        gradients of the weights (masked, as a ticket's) and of the scores (straight-through:
        dL/d(W * m) * W)."""
        masks = self.masks(params)
        effective = self._fresh = self._effective(params, masks)
        loss, accuracy, grads = self.model.loss_and_grads(effective, None, inputs, labels,
                                                          loss_dtype, with_grads, with_loss)
        if not with_grads:
            return loss, accuracy, None
        out = {}
        for name in self.model.specs:
            d_effective = grads[name]
            if name in masks:
                out[score_name(name)] = d_effective * params[name]
                out[name] = d_effective * masks[name] if self.train_weights else d_effective
            else:
                out[name] = d_effective
        return loss, accuracy, out

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with the members at ``positions`` only."""
        self.counts = {name: [c[p] for p in positions] for name, c in self.counts.items()}
        self.tracker = ThresholdTracker()  # fewer rows: start afresh
        self._fresh = None

