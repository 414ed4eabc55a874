"""Measures of a run: grokking times, mask distance, Fourier entropy."""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import torch


def first_reached(steps: Sequence[int], values: Sequence[float], threshold: float) -> Optional[int]:
    """First step whose value is >= threshold, or None if none is."""
    for step, value in zip(steps, values):
        if value is not None and not math.isnan(value) and value >= threshold:
            return int(step)
    return None


def grokking_ratio(t_mem: Optional[int], t_gen: Optional[int]) -> Optional[float]:
    """tau_grok = t_gen / t_mem; None if either is missing or t_mem is 0."""
    if t_mem is None or t_gen is None or t_mem == 0:
        return None
    return t_gen / t_mem


def grokking_times(steps: Sequence[int], train_acc: Sequence[float], test_acc: Sequence[float],
                   threshold: float = 0.95
                   ) -> tuple[Optional[int], Optional[int], Optional[float]]:
    """(t_mem, t_gen, tau_grok) from accuracy curves evaluated at ``steps``.

    t_mem: first step with train accuracy >= threshold; t_gen: first with test accuracy >=
    threshold; tau_grok = t_gen / t_mem. A threshold never reached gives None, never the last step.
    """
    t_mem = first_reached(steps, train_acc, threshold)
    t_gen = first_reached(steps, test_acc, threshold)
    return t_mem, t_gen, grokking_ratio(t_mem, t_gen)


def jaccard_distance(mask_a: torch.Tensor | Mapping[str, torch.Tensor],
                     mask_b: torch.Tensor | Mapping[str, torch.Tensor]) -> float:
    """1 - |a and b| / |a or b| over kept entries; 0 when both masks keep nothing.

    Accepts two boolean tensors or two dicts of them (then counted over all tensors).
    """
    if isinstance(mask_a, Mapping):
        names = list(mask_a)
        mask_a = torch.cat([mask_a[k].reshape(-1).bool() for k in names])
        mask_b = torch.cat([mask_b[k].reshape(-1).bool() for k in names])
    a, b = mask_a.bool(), mask_b.bool()
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    union = (a | b).sum().item()
    if union == 0:
        return 0.0
    return 1.0 - (a & b).sum().item() / union


def fourier_spectrum(weights: torch.Tensor) -> torch.Tensor:
    """[neurons, floor(p/2)] DFT amplitudes of each row over x = 0..p-1, DC term dropped."""
    return torch.fft.rfft(weights.double(), dim=-1).abs()[:, 1:]


def fourier_entropy(weights: torch.Tensor, variant: str = "shannon") -> float:
    """Mean per-neuron entropy of the normalised DFT amplitudes of ``weights`` [neurons, p].

    Row i is f_i(x), neuron i's effective input weight for token x (for the MLP:
    ``MLP.effective_input_weights``). ``variant="shannon"`` (default): amplitudes of frequencies
    1..floor(p/2) normalised to a distribution q_i, entropy -sum q log q, averaged over neurons
    whose weights are not all zero. Low values mean each neuron uses few frequencies.
    ``variant="authors"``: the authors' code (vis_activate.py): full FFT amplitudes of
    frequencies 1..floor(p/2)-1, normalised to q_i, then the cross-entropy of q_i with
    softmax(q_i), i.e. logsumexp(q_i) - sum q_i^2, averaged over the same neurons.
    """
    if weights.dim() != 2:
        raise ValueError(f"weights must be [neurons, p], got shape {tuple(weights.shape)}")
    p = weights.shape[1]
    if variant == "shannon":
        amplitudes = fourier_spectrum(weights)
    elif variant == "authors":
        amplitudes = torch.fft.fft(weights.double(), dim=-1).abs()[:, 1:p // 2]
    else:
        raise ValueError(f"unknown Fourier entropy variant {variant!r}; use 'shannon' or 'authors'")
    totals = amplitudes.sum(-1)
    live = (weights != 0).any(-1) & (totals > 0)
    if not live.any():
        return float("nan")
    q = amplitudes[live] / totals[live, None]
    if variant == "shannon":
        per_neuron = -(q * torch.where(q > 0, q.log(), torch.zeros_like(q))).sum(-1)
    else:
        per_neuron = -(q * torch.log_softmax(q, dim=-1)).sum(-1)
    return per_neuron.mean().item()
