"""Variants that share what the training loop shares train as one cohort, one trial: which
variants share (``grok_core.trial_config.cohort_signature``, the one place that decides), how a
sweep splits them into trials, and that every member keeps the numbers of its variant trained
alone (the engine, a resumed cohort, the tables, a real quick sweep through the CLI)."""
import json

import pandas as pd
import pytest
import torch

import analysis
from analysis.claims import ticket_beats_variants
from conftest import (GROKKING_OVERRIDES, TINY, TINY_TICKET, as_ticket, sets,
                      trial_worker_killed_mid_run)
from grok_core.config import ConfigError, ExperimentConfig
from grok_core.layout import CURVES_FILE
from grok_core.recipes import run_recipe, run_variants
from grok_core.store import ArtifactStore
from grok_core.training import Callbacks, TrainingState
from grok_core.trial_config import split_trial_config, split_variant_config
from sweeps.grid_sweep import SweepRequest, build_space
from sweeps.space import apply_overrides, expand_cells, split_cohorts
from sweeps.trial import member_outcomes


def _labels(value):
    """The labels of a variant grid value (one variant, or a group)."""
    return [v["label"] for v in (value if isinstance(value, list) else [value])]


def _trial_groups(space):
    return [_labels(v) for v in space["variant"]["grid_search"]]


def _members(cell):
    return len(cell["seeds"]) * len(cell.get("rates") or [None]) * len(_labels(cell["variant"]))


def test_variants_that_share_what_the_loop_shares_are_one_trial_and_no_others():
    pai = split_cohorts(SweepRequest(study="pai").space_dict(), 64)
    assert _trial_groups(pai) == [["grokking ticket", "random", "snip", "grasp", "synflow"]]
    norms = split_cohorts(SweepRequest(study="norm_control", quick=True).space_dict(), 64)
    assert _trial_groups(norms) == [["grokking ticket", "L1 norm-matched dense",
                                     "L2 norm-matched dense"]]
    # Table 1: WD keeps fixed masks, EP w/o WD learns masks over frozen weights, EP w/ WD
    # learns them and trains the weights, and the authors' rows train on other splits or
    # fractions (another task): no two rows share a cohort, each stays a trial of its own
    table_1 = split_cohorts(SweepRequest(study="edge_popup").space_dict(), 64)
    assert [type(v) for v in table_1["variant"]["grid_search"]] == [dict] * 6
    # dense runs never share (they train into the artifact store), nor do other tasks
    operations = split_cohorts(SweepRequest(study="operations").space_dict(), 64)
    assert all(isinstance(v, dict) for v in operations["variant"]["grid_search"])


def test_an_override_that_parts_variants_leaves_them_in_trials_of_their_own():
    space = {"recipe": "ticket", "seeds": [0, 1], "rates": [0.6], "train": {"steps": 400},
             "variant": {"grid_search": [
                 {"label": "ticket"}, {"label": "own steps", "train": {"steps": 400}},
                 {"label": "random", "prune": {"method": "random", "step": 0}},
                 {"label": "own lr", "recipe": "norm_control", "optim": {"lr": 0.01}}]}}
    # lr and weight decay are each member's own: only the step budget parts them
    assert _trial_groups(split_cohorts(space, 64)) == [["ticket", "own steps", "random",
                                                        "own lr"]]
    parted = apply_overrides(space, ["train.steps=300"])  # "own steps" keeps its 400
    assert _trial_groups(split_cohorts(parted, 64)) == [["ticket", "random", "own lr"],
                                                        ["own steps"]]
    (lone,) = [c for c in expand_cells(split_cohorts(parted, 64)) if isinstance(c["variant"],
                                                                                   dict)]
    assert split_trial_config(lone)[0].train.steps == 400  # a trial as before groups existed
    # a group the loop cannot train as one cohort is refused, naming its variants
    with pytest.raises(ConfigError, match="ticket, own steps cannot train as one cohort"):
        split_variant_config({**parted, "variant": space["variant"]["grid_search"][:2]})


@pytest.mark.parametrize("study", ["pai", "norm_control"])
def test_max_cohort_splits_seeds_and_rates_first_then_variant_groups(study):
    variants = {"pai": 5, "norm_control": 3}[study]
    for cap in (1, 2, 3, 4, 5, 7, 10, 15, 64):
        for slots in (1, 2, 4):
            _, cells = build_space(SweepRequest(study=study, max_cohort=cap), slots)
            members = sorted((label, seed) for cell in cells for label in _labels(cell["variant"])
                             for seed in cell["seeds"])
            assert len(members) == len(set(members)) == 3 * variants  # each exactly once
            assert max(map(_members, cells)) <= cap
            # a group is cut only where one seed of all its variants is above the cap
            assert all(len(_labels(c["variant"])) == variants for c in cells) == (cap >= variants)
    assert len(build_space(SweepRequest(study=study), 1)[1]) == 1  # one trial for one slot
    assert len(build_space(SweepRequest(study=study), 2)[1]) == 2  # seeds {0, 1} and {2}


class _Keeper(Callbacks):
    """Each member's last handed-over weights (its final ones) and the resumable states."""

    def __init__(self):
        self.final, self.states = {}, {}

    def on_checkpoint(self, step, params, members):
        for position, k in enumerate(members):
            self.final[k] = {n: t[position].clone() for n, t in params.items()}

    def on_state(self, state):
        self.states[state.step] = state.to_bytes()


def _mixed_variants(grokking_config):
    """A ticket, a random mask at theta_0, an L2-norm control with its own lr and weight
    decay: three recipes, one cohort."""
    ticket = as_ticket(grokking_config, "train.steps=400", "train.stop_margin=100")
    return [("grokking ticket", ticket),
            ("random", ticket.with_overrides(["prune.method=random", "prune.step=0"])),
            ("L2", ticket.with_overrides(["recipe=norm_control", "optim.lr=0.02",
                                          "optim.weight_decay=0.5"]))]


def _learned_mask_variants(grokking_config):
    """Two edge-popup variants that learn masks over frozen weights, at their own lr."""
    ep = ExperimentConfig().with_overrides([
        *GROKKING_OVERRIDES, "recipe=edge_popup", "edge_popup.start_step=100", "train.steps=300"])
    return [("EP", ep), ("EP fast", ep.with_overrides(["optim.lr=0.03"]))]


@pytest.mark.parametrize("variants", [_mixed_variants, _learned_mask_variants])
def test_a_cohort_of_variants_trains_each_member_like_its_variant_alone(
        tmp_path, grokking_config, variants):
    store, variants = ArtifactStore(str(tmp_path)), variants(grokking_config)
    keeper = _Keeper()
    together = run_variants(variants, [0, 1], store, rates=[0.6], callbacks=keeper)
    assert together.members["variant"].tolist() == [v for v, _ in variants for _ in (0, 1)]
    for position, (label, config) in enumerate(variants):
        alone_keeper = _Keeper()
        alone = run_recipe(config, [0, 1], store, rates=[0.6], callbacks=alone_keeper)
        mine = together.members[together.members["variant"] == label].drop(columns="variant")
        # bitwise on the CPUs measured here; the tolerance leaves room for other BLAS kernels
        pd.testing.assert_frame_equal(mine.reset_index(drop=True)[alone.members.columns],
                                      alone.members, rtol=1e-5, atol=1e-6, check_dtype=False)
        for step in ("t_mem", "t_gen", "steps_run"):  # exact (None: never reached)
            assert mine[step].fillna(-1).tolist() == alone.members[step].fillna(-1).tolist()
        curves = together.curves[together.curves["variant"] == label].drop(columns="variant")
        pd.testing.assert_frame_equal(curves.reset_index(drop=True)[alone.curves.columns],
                                      alone.curves, rtol=1e-5, atol=1e-6)
        for k in (0, 1):
            for name, tensor in alone_keeper.final[k].items():
                assert torch.allclose(keeper.final[2 * position + k][name], tensor,
                                      rtol=1e-5, atol=1e-6), (label, k, name)


def test_a_cohort_of_variants_resumed_from_its_state_equals_the_uninterrupted_run(
        tmp_path, grokking_config):
    store, variants = ArtifactStore(str(tmp_path)), _mixed_variants(grokking_config)
    keeper = _Keeper()
    whole = run_variants(variants, [0, 1], store, rates=[0.6], callbacks=keeper, state_every=100)
    assert sorted(keeper.states) == [100, 200, 300]
    resumed = run_variants(variants, [0, 1], store, rates=[0.6],
                           resume=TrainingState.from_bytes(keeper.states[200]))
    pd.testing.assert_frame_equal(resumed.members, whole.members, check_exact=True)
    pd.testing.assert_frame_equal(resumed.curves, whole.curves, check_exact=True)


def _trial_folder(root, name, config, curves):
    folder = root / name / "checkpoint_000000"
    folder.mkdir(parents=True)
    (root / name / "params.json").write_text(json.dumps(config))
    curves.to_parquet(folder / CURVES_FILE, index=False)


def test_a_partial_group_and_an_old_single_variant_trial_read_as_one_trial_per_variant(
        tmp_path):
    """A trial of a variant group cut short reads as one trial per variant, its curves'
    members labelled in the order the trainable stacks them (variant after variant); a
    trial of one variant dict, as every sweep before groups stored, reads as it always did."""
    ticket, random = {"label": "ticket"}, {"label": "random",
                                             "prune": {"method": "random", "step": 0}}
    curves = pd.DataFrame({"member": [0, 1, 2, 3], "step": 0, "test_acc": [0.1, 0.2, 0.3, 0.4]})
    common = {"recipe": "ticket", "seeds": [0, 1], "rates": [0.6]}
    _trial_folder(tmp_path, "group", {**common, "variant": [ticket, random]}, curves)
    _trial_folder(tmp_path, "old", {**common, "variant": random}, curves.iloc[:2])
    loaded = analysis.load(str(tmp_path))
    # variant after variant, as the trials of a sweep that trained a trial per variant
    assert loaded.trials["trial"].tolist() == ["group:ticket", "group:random", "old"]
    assert loaded.trials["variant"].tolist() == ["ticket", "random", "random"]
    assert loaded.trials["prune.method"].fillna("-").tolist() == ["-", "random", "random"]
    assert loaded.trials["tune_trial"].tolist() == ["group", "group", "old"]
    assert "variant" not in loaded.curves.columns  # the trials frame tells them apart
    rows = loaded.curves.set_index(["trial", "seed"])["test_acc"]
    assert rows.to_dict() == {("group:ticket", 0): 0.1, ("group:ticket", 1): 0.2,
                              ("group:random", 0): 0.3, ("group:random", 1): 0.4,
                              ("old", 0): 0.1, ("old", 1): 0.2}


def test_a_quick_sweep_trains_its_variants_in_fewer_trials_with_their_solo_numbers(
        tmp_path, grok):
    storage = tmp_path / "s"
    small = [*TINY_TICKET, *sets("train.steps=400", "base.train.steps=600")]
    result = grok("sweep", "norm_control", "--quick", *small, "--storage", storage)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = storage / "norm_control-quick"
    tune_trials = [p for p in folder.iterdir() if (p / "params.json").exists()]
    assert 1 <= len(tune_trials) <= 2  # 3 variants x 2 seeds: was 3 trials and a dense phase
    assert not (storage / "norm_control-quick.dense").exists()
    loaded = analysis.load(str(folder))
    assert (folder / "figure.png").stat().st_size > 10_000 and loaded.trials["finished"].all()
    assert len(loaded.trials) == 3 * len(tune_trials)  # one trial per variant, as before
    assert len(loaded.members) == 6 and loaded.members["trial"].nunique() == len(loaded.trials)
    assert "L2 norm-matched dense" in result.stdout  # grok results' table per variant
    assert "1/1 trials finished" in result.stdout or "2/2 trials finished" in result.stdout
    assert len(ticket_beats_variants(loaded).numbers) == 3  # the report's claim reads them
    # what each variant gives as a trial of its own (the dense runs are in the store)
    request = SweepRequest(study="norm_control", quick=True,
                           overrides=[s for s in small if s != "--set"])
    for cell in expand_cells(request.space_dict()):
        config, seeds, rates = split_trial_config(cell)
        alone = run_recipe(config, seeds, ArtifactStore(str(storage)), rates=rates).members
        mine = loaded.members[loaded.members["variant"] == cell["variant"]["label"]]
        columns = ["seed", "t_mem", "t_gen", "final_test_acc", "steps_run"]
        pd.testing.assert_frame_equal(
            mine[columns].sort_values("seed").reset_index(drop=True).astype(float),
            alone[columns].sort_values("seed").reset_index(drop=True).astype(float))
    assert sorted(loaded.base["seed"]) == [0, 1]  # the dense runs, trained in the trials
    assert len(loaded.curves.merge(loaded.trials[["trial", "variant"]], on="trial")) == len(
        loaded.curves)


def test_a_killed_variant_group_trial_resumes_to_the_uninterrupted_members(tmp_path, grok):
    # every variant pruned at theta_0 (no dense run): the trial trains its 5 variants as one
    # cohort from its first report on, and is killed at its second report, mid-run: 15,000
    # steps (~6 s; 3,000 now take ~1.3 s, which a loaded suite's driver could report only
    # after the trial had finished)
    storage = tmp_path / "s"
    with trial_worker_killed_mid_run(storage / "pai-quick") as killed:
        result = grok("sweep", "pai", "--quick", *TINY, "--seeds", "0", "--report-every", "500",
                      *sets("prune.step=0", "train.steps=15000"), "--storage", storage)
    assert killed and result.returncode == 0, result.stderr[-3000:]
    (trial,) = [p for p in (storage / "pai-quick").iterdir() if (p / "params.json").exists()]
    final = json.loads((trial / "result.json").read_text().splitlines()[-1])
    assert final["resumed_from_step"] > 0 and final["members"] == 5
    # the same trial config trained here without a break
    variants, seeds, rates = split_variant_config(json.loads((trial / "params.json").read_text()))
    whole = run_variants(variants, seeds, ArtifactStore(str(storage)), rates=rates).members
    loaded = analysis.load(str(storage / "pai-quick")).members
    columns = ["variant", "seed", "t_mem", "t_gen", "final_test_acc", "steps_run"]
    # never reached: None in a run's rows, NaN once stored beside a step that was
    as_stored = {"t_mem": float, "t_gen": float}
    pd.testing.assert_frame_equal(
        loaded[columns].astype(as_stored).sort_values("variant").reset_index(drop=True),
        whole[columns].astype(as_stored).sort_values("variant").reset_index(drop=True),
        check_dtype=False)


def test_a_sweep_stored_before_variants_shared_trials_still_reads_and_resumes(
        tmp_path, grok, monkeypatch):
    import sweeps.space
    storage = tmp_path / "s"
    args = ["sweep", "pai", "--quick", *TINY_TICKET, "--storage", storage,
            *sets("train.steps=200", "base.train.steps=600")]
    with monkeypatch.context() as before_groups:  # a trial per variant, as sweeps were stored
        before_groups.setattr(sweeps.space, "group_variants", lambda space: space)
        first = grok(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    stored = analysis.load(str(storage / "pai-quick"))
    assert len(stored.trials) == 5 and (stored.trials["trial"] == stored.trials["tune_trial"]).all()
    # Tune restores the stored trials, however today's code splits the space (on up to 5
    # slots it now splits the seeds, whose grid Tune's check of a re-given space refused)
    again = grok(*args)
    assert again.returncode == 0 and "resuming" in again.stderr, again.stderr[-3000:]
    pd.testing.assert_frame_equal(analysis.load(str(storage / "pai-quick")).members,
                                  stored.members)


def test_a_variant_groups_final_report_says_which_variant_each_member_is():
    rows = pd.DataFrame({"variant": ["grokking ticket", "random"], "seed": [0, 0],
                         "pruning_rate": [0.6, 0.6], "t_mem": [200, 210], "t_gen": [500, None],
                         "final_test_acc": [1.0, 0.3], "steps_run": [700, 30000]})
    report = member_outcomes(rows)
    assert [m["variant"] for m in report["member_outcomes"]] == ["grokking ticket", "random"]
    assert report["generalised_fraction"] == 0.5
    single = member_outcomes(rows.drop(columns="variant"))  # a trial of one variant
    assert "variant" not in single["member_outcomes"][0]
