"""Grokking times, Jaccard distance, Fourier entropy: hand-computable cases."""
import math

import pytest
import torch

from grok_core.metrics import fourier_entropy, grokking_times, jaccard_distance


def test_grokking_times_first_crossing():
    steps = [0, 10, 20, 30, 40]
    train = [0.1, 0.96, 0.5, 1.0, 1.0]
    test = [0.0, 0.1, 0.2, 0.95, 1.0]
    assert grokking_times(steps, train, test) == (10, 30, 3.0)


def test_grokking_times_missing_is_none_not_last_step():
    assert grokking_times([0, 1, 2], [0.5, 1.0, 1.0], [0.1, 0.2, 0.94]) == (1, None, None)
    assert grokking_times([0, 1], [0.1, 0.2], [0.1, 0.2]) == (None, None, None)
    assert grokking_times([], [], []) == (None, None, None)


def test_grokking_times_threshold_and_zero_tmem():
    assert grokking_times([0, 5], [0.5, 0.6], [0.5, 0.6], threshold=0.55) == (5, 5, 1.0)
    t_mem, t_gen, tau = grokking_times([0, 5], [1.0, 1.0], [0.0, 1.0])
    assert (t_mem, t_gen, tau) == (0, 5, None)  # t_gen / 0 is undefined


def test_jaccard_known_masks():
    a = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    b = torch.tensor([1, 0, 1, 0], dtype=torch.bool)
    assert jaccard_distance(a, b) == pytest.approx(1 - 1 / 3)
    assert jaccard_distance(a, a) == 0.0
    assert jaccard_distance(a, ~a) == 1.0
    empty = torch.zeros(4, dtype=torch.bool)
    assert jaccard_distance(empty, empty) == 0.0
    assert jaccard_distance({"x": a, "y": a}, {"x": b, "y": a}) == pytest.approx(1 - 3 / 5)


def test_fourier_entropy_cosine_vs_noise():
    p = 67
    x = torch.arange(p, dtype=torch.float64)
    cosine = torch.cos(2 * math.pi * 5 * x / p)[None]
    assert fourier_entropy(cosine) < 1e-3  # one frequency: entropy 0
    noise = torch.randn(48, p, generator=torch.Generator().manual_seed(0))
    assert fourier_entropy(noise) > 3.0  # close to log(33) = 3.50 for a flat spectrum
    assert fourier_entropy(noise) <= math.log(p // 2)
    two = torch.cos(2 * math.pi * 3 * x / p) + torch.cos(2 * math.pi * 7 * x / p)
    assert fourier_entropy(two[None]) == pytest.approx(math.log(2), abs=1e-3)


def test_fourier_entropy_skips_zero_neurons_and_offers_authors_variant():
    p = 67
    x = torch.arange(p, dtype=torch.float64)
    cosine = torch.cos(2 * math.pi * 5 * x / p)[None]
    with_dead = torch.cat([cosine, torch.zeros(1, p)])
    assert fourier_entropy(with_dead) == pytest.approx(fourier_entropy(cosine))
    # authors: q one-hot over 32 frequencies -> logsumexp(q) - sum q^2 = log(31 + e) - 1
    assert fourier_entropy(cosine, variant="authors") == pytest.approx(
        math.log(31 + math.e) - 1, abs=1e-3)
    with pytest.raises(ValueError):
        fourier_entropy(cosine, variant="other")
