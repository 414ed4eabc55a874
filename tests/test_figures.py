"""Figure helpers: what the summary figure averages."""
import pandas as pd

from analysis.figures import mean_over_members


def test_a_member_that_stopped_early_holds_its_last_value_in_the_mean():
    curves = pd.DataFrame({
        "trial": ["t"] * 5, "seed": [0, 0, 1, 1, 1], "pruning_rate": [0.6] * 5,
        "step": [0, 10, 0, 10, 20], "test_acc": [0.0, 1.0, 0.0, 0.5, 0.7]})
    mean = mean_over_members(curves)
    assert mean.to_dict() == {0: 0.0, 10: 0.75, 20: 0.85}  # seed 0 stopped at 10, holds 1.0
