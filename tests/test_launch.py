"""How a study becomes trials before any Ray work: cohort splits, dense phase, driver imports."""
import subprocess
import sys

from grok_core.store import ArtifactStore
from sweeps.dense_phase import dense_phase_space
from sweeps.grid_sweep import SweepRequest, build_space
from sweeps.space import plan_split, split_cohorts


def _members(cell):
    return len(cell["seeds"]) * len(cell.get("rates") or [None])


def test_a_cohort_above_the_cap_splits_by_seed_groups_first():
    space = {"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.1, 0.2, 0.3, 0.4]}
    assert split_cohorts(space, 12) == space  # fits: one trial
    split = split_cohorts(space, 8)
    assert split["seeds"] == {"grid_search": [[0, 1], [2]]} and split["rates"] == space["rates"]
    split = split_cohorts(space, 3)  # one seed's rates exceed the cap: rates split too, into
    assert split["seeds"] == space["seeds"]  # as few trials as the cap allows (4 of 3 members)
    assert split["rates"] == {"grid_search": [[0.1], [0.2], [0.3], [0.4]]}
    dense = {"recipe": "dense", "seeds": [0, 1, 2, 3, 4]}
    assert split_cohorts(dense, 2)["seeds"] == {"grid_search": [[0, 1], [2, 3], [4]]}


def test_cohorts_split_to_fill_the_slots():
    # one slot: one trial per cell, as large as the cap allows
    assert plan_split(3, 10, max_cohort=64, slots=1) == (3, 10)
    # headline on 2 CPUs: two trials, each training its own dense runs (no dense phase)
    assert plan_split(3, 1, max_cohort=64, slots=2) == (2, 1)
    # Fig. 3 on 2 CPUs: a dense phase, then the rates in two halves side by side (a trial per
    # seed would leave one CPU idle for a third of the time)
    assert plan_split(3, 10, max_cohort=64, slots=2) == (3, 5)
    assert plan_split(3, None, max_cohort=64, slots=2) == (2, 1)  # dense cells: seed groups
    # cells that already fill the slots are not split
    assert plan_split(3, 1, max_cohort=64, slots=2, cells=6) == (3, 1)
    space = {"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.1, 0.2, 0.3, 0.4]}
    split = split_cohorts(space, 64, slots=2)
    assert split["rates"] == {"grid_search": [[0.1, 0.2], [0.3, 0.4]]}


def test_split_cells_cover_every_member_once_within_the_cap(tmp_path):
    for cap in (1, 2, 3, 5, 7, 20, 64):
        for slots in (1, 2, 3, 8):
            _, cells = build_space(SweepRequest(study="pruning_rate", quick=True, max_cohort=cap),
                                   slots)
            members = sorted((seed, rate) for cell in cells for seed in cell["seeds"]
                             for rate in cell["rates"])
            # the quick sweep's 2 seeds x 4 rates (rate 0 is its dense runs)
            assert members == sorted((s, round(0.2 * i, 1)) for s in (0, 1) for i in range(1, 5))
            assert max(map(_members, cells)) <= cap
            assert len(cells) >= min(slots, 8 // cap if cap < 8 else 1)


def test_dense_phase_only_for_dense_runs_that_several_trials_share(tmp_path):
    store = ArtifactStore(str(tmp_path))
    _, by_seed = build_space(SweepRequest(study="pruning_rate", quick=True, max_cohort=5))
    assert len(by_seed) == 2 and dense_phase_space(by_seed, store) is None  # a trial per seed
    _, by_rate = build_space(SweepRequest(study="pruning_rate", quick=True, max_cohort=3))
    dense = dense_phase_space(by_rate, store, slots=2)["dense_run"]["grid_search"]
    assert sorted(seed for run in dense for seed in run["seeds"]) == [0, 1]
    _, steps = build_space(SweepRequest(study="pruning_step", quick=True))  # masks of one run
    dense = dense_phase_space(steps, store, slots=1)["dense_run"]["grid_search"]
    assert [run["seeds"] for run in dense] == [[0, 1]] and dense[0]["recipe"] == "dense"


def test_rates_and_seeds_replace_the_spaces_own():
    space, cells = build_space(SweepRequest(study="pruning_rate", quick=True, seeds=[3],
                                            rates=[0.5, 0.7]))
    assert [(c["seeds"], c["rates"]) for c in cells] == [([3], [0.5, 0.7])]


def test_the_sweep_driver_never_imports_torch(tmp_path):
    # validation and handing the trainable to Tune stay light: torch loads inside trials
    code = ("import sys; from sweeps.dense_phase import dense_phase_space;"
            "from sweeps.grid_sweep import SweepRequest, build_space;"
            "from grok_core.store import ArtifactStore;"
            "from sweeps.trainable import grok_trainable;"
            "_, cells = build_space(SweepRequest(study='pruning_step', quick=True));"
            "dense_phase_space(cells, ArtifactStore(sys.argv[1]));"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
