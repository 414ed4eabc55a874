"""Figure helpers: what the summary figure averages."""
import pandas as pd

from analysis.figures import mean_over_members


def test_a_member_that_stopped_early_holds_its_last_value_in_the_mean():
    curves = pd.DataFrame({
        "trial": ["t"] * 5, "seed": [0, 0, 1, 1, 1], "pruning_rate": [0.6] * 5,
        "step": [0, 10, 0, 10, 20], "test_acc": [0.0, 1.0, 0.0, 0.5, 0.7]})
    mean = mean_over_members(curves)
    assert mean.to_dict() == {0: 0.0, 10: 0.75, 20: 0.85}  # seed 0 stopped at 10, holds 1.0


def _two_operations() -> "SweepResults":
    from analysis.results import SweepResults
    members = pd.DataFrame({"trial": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
                            "pruning_rate": [0.6] * 4, "variant": ["sub", "sub", "mul", "mul"],
                            "t_mem": [200, 220, 190, 210], "t_gen": [900, 1100, None, None]})
    base = pd.DataFrame({"trial": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
                         "t_mem": [100, 100, 90, 90], "t_gen": [3000, 5000, 7000, 9000]})
    trials = pd.DataFrame({"trial": ["a", "b"], "variant": ["sub", "mul"]})
    curves = pd.DataFrame({"trial": ["a", "b"], "seed": [0, 0], "pruning_rate": [0.6, 0.6],
                           "step": [0, 0], "test_acc": [0.0, 0.0]})
    return SweepResults(members, curves, trials, base)


def test_each_cell_is_drawn_beside_its_own_dense_runs_not_their_overall_mean():
    from analysis.figures import _dense_runs_per_cell, _draw_dense_per_cell
    from analysis.plotting import pyplot
    loaded = _two_operations()
    dense = _dense_runs_per_cell(loaded, ["variant"])
    assert dense.groupby("variant")["t_gen"].mean().to_dict() == {"sub": 4000, "mul": 8000}
    fig, ax = pyplot().subplots()
    groups = list(loaded.members.groupby(["variant"], sort=False))
    _draw_dense_per_cell(ax, dense, ["variant"], groups)
    drawn = sorted((round(float(line.get_xdata()[0]), 1), float(line.get_ydata()[0]))
                   for line in ax.lines if line.get_marker() == "D")
    # sub at x=0 (t_mem 100, t_gen 4000), mul at x=1 (t_mem 90, t_gen 8000), not 6000 for both
    assert drawn == [(0.2, 100.0), (0.2, 4000.0), (1.2, 90.0), (1.2, 8000.0)]


def test_dense_runs_without_a_trial_fall_back_to_one_line():
    from analysis.figures import _dense_runs_per_cell
    loaded = _two_operations()
    loaded.base = loaded.base.drop(columns="trial")
    assert _dense_runs_per_cell(loaded, ["variant"]) is None
    assert _dense_runs_per_cell(_two_operations(), []) is None
