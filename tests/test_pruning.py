"""mask_from_scores: exact counts, ties, scopes."""
import pytest
import torch

from grok_core.config import ConfigError
from grok_core.pruning import count_to_prune, magnitude_mask, mask_from_scores


def test_global_removes_exactly_the_lowest_with_ties_in_order():
    scores = {"a": torch.tensor([1.0, 1.0, 3.0]), "b": torch.tensor([[1.0, 2.0], [0.5, 1.0]])}
    masks = mask_from_scores(scores, 0.5)  # n = 7, remove floor(3.5) = 3
    assert masks["a"].tolist() == [False, False, True]
    # 0.5 goes first, then the 1.0s in order: a[0], a[1]; b's 1.0s survive
    assert masks["b"].tolist() == [[True, True], [False, True]]
    assert sum(int((~m).sum()) for m in masks.values()) == 3
    assert masks["b"].dtype == torch.bool and masks["b"].shape == (2, 2)


def test_layer_scope_counts_per_tensor():
    scores = {"a": torch.arange(10.0), "b": torch.arange(4.0)}
    masks = mask_from_scores(scores, 0.5, scope="layer")
    assert masks["a"].tolist() == [False] * 5 + [True] * 5
    assert masks["b"].tolist() == [False, False, True, True]
    glob = mask_from_scores(scores, 0.5, scope="global")  # remove 7 of 14: a0-4, b0-1
    assert int((~glob["a"]).sum()) + int((~glob["b"]).sum()) == 7


def test_all_equal_scores_still_remove_the_exact_count():
    masks = mask_from_scores({"w": torch.zeros(4, 5)}, 0.6)
    assert int((~masks["w"]).sum()) == 12
    assert masks["w"].reshape(-1).tolist() == [False] * 12 + [True] * 8


@pytest.mark.parametrize("rate, n, expected", [(0.29, 100, 29), (0.6, 115_000, 69_000),
                                               (0.7, 10, 7), (0.0, 50, 0), (0.999, 1000, 999)])
def test_count_is_floor_of_the_decimal_rate(rate, n, expected):
    assert count_to_prune(rate, n) == expected


def test_rate_zero_keeps_everything_and_bad_rates_fail():
    assert mask_from_scores({"w": torch.randn(3, 3)}, 0.0)["w"].all()
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ConfigError):
            mask_from_scores({"w": torch.randn(3)}, bad)
    with pytest.raises(ConfigError):
        mask_from_scores({"w": torch.randn(3)}, 0.5, scope="neuron")


def test_magnitude_mask_keeps_the_largest_absolute_values():
    weights = {"w": torch.tensor([-5.0, 0.1, 3.0, -0.2])}
    assert magnitude_mask(weights, 0.5)["w"].tolist() == [True, False, True, False]
