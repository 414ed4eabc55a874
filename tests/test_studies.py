"""The studies of Sec. 4-5 (Fig. 5a, 5b, 6-8, Table 1): variants, the Fourier entropy over
training, the tables and figures, and each study end to end at --quick through local Ray."""
import pandas as pd
import pytest
import torch

import analysis
from conftest import TINY, TINY_TICKET, sets
from grok_core.config import ConfigError, ExperimentConfig
from grok_core.metrics import fourier_entropy
from grok_core.recipes import model_for
from grok_core.training import MemberSpec, train_cohort
from grok_core.trial_config import split_trial_config, variant_label
from search_spaces import get_study
from sweeps.space import expand_cells, space_recipes, validated_cells


def test_a_variant_merges_its_settings_over_the_trials_others():
    cell = {"recipe": "ticket", "seeds": [0], "rates": [0.6], "prune": {"rate": 0.5},
            "variant": {"label": "SNIP at init", "prune": {"method": "snip", "step": 0}}}
    config, seeds, rates = split_trial_config(cell)
    assert (config.prune.method, config.prune.step, config.prune.rate) == ("snip", 0, 0.5)
    assert seeds == [0] and rates == [0.6] and variant_label(cell) == "SNIP at init"
    with pytest.raises(ConfigError, match="label"):
        split_trial_config({**cell, "variant": {"prune": {"method": "snip"}}})


def test_each_study_expands_to_the_papers_cells_and_no_others():
    pai = [split_trial_config(c)[0] for c in expand_cells(get_study("pai").param_space())]
    assert [(c.prune.method, c.prune.step) for c in pai] == [
        ("magnitude", "final"), ("random", 0), ("snip", 0), ("grasp", 0), ("synflow", 0)]
    norms = [split_trial_config(c)[0] for c in expand_cells(
        get_study("norm_control").param_space())]
    assert [(c.recipe, c.norm_control.norm) for c in norms][1:] == [("norm_control", "l1"),
                                                                      ("norm_control", "l2")]
    assert norms[0].recipe == "ticket"
    table_1 = [split_trial_config(c)[0] for c in expand_cells(
        get_study("edge_popup").param_space())]
    assert [c.edge_popup.variant for c in table_1] == ["wd", "ep", "ep_wd", "ep", "ep", "ep"]
    # the paper's three rows on theta_mem's own split at fraction 0.4; then the leakage alone
    # (edge-popup on split 1, theta_mem on split 0); fraction 0.5; both (the authors' script)
    assert [(c.task.train_fraction, c.task.split_seed, c.dense_base().task.split_seed)
            for c in table_1] == [(0.4, 0, 0)] * 3 + [(0.4, 1, 0), (0.5, 0, 0), (0.5, 1, 0)]
    assert table_1[0].dense_key() == table_1[3].dense_key()  # one theta_mem per fraction
    assert table_1[4].dense_key() == table_1[5].dense_key() != table_1[0].dense_key()
    assert {(c.optim.lr, c.dense_base().train.steps, c.train.steps) for c in table_1} == {
        (0.01, 1000, 2000)}
    assert space_recipes(get_study("norm_control").param_space()) == {"ticket", "norm_control"}
    for name in ("pai", "norm_control", "edge_popup", "structure"):
        assert validated_cells(get_study(name).param_space(quick=True))


def test_the_fourier_entropy_curve_is_that_of_the_masked_effective_weights():
    config = ExperimentConfig().with_overrides([
        "task.p=11", "task.pairs=all", "model.d_emb=12", "model.d_hidden=8", "train.steps=30",
        "train.eval_every=10", "train.fourier_entropy=shannon", "optim.lr=0.01"])
    model = model_for(config)
    mask = {n: torch.rand(model.specs[n].shape, generator=torch.Generator().manual_seed(1)) > 0.5
            for n in model.prunable}
    result = train_cohort(config, [MemberSpec(seed=0), MemberSpec(seed=1, mask=mask)])
    for k in range(2):
        final = {n: t[k:k + 1] for n, t in result.final_params.items()}
        expected = fourier_entropy(model.effective_input_weights(final)[0])
        last = result.curves[result.curves["member"] == k].iloc[-1]
        assert last["step"] == 30 and last["fourier_entropy"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigError, match="model.name=mlp"):
        config.with_overrides(["model.name=transformer"])


def test_accuracy_at_the_tables_steps_holds_a_stopped_members_last_value():
    curves = pd.DataFrame({
        "trial": ["a"] * 4 + ["b"] * 2, "seed": [0, 0, 1, 1, 0, 0], "pruning_rate": 0.6,
        "step": [0, 600, 0, 600, 0, 500], "test_acc": [0.1, 0.5, 0.2, 0.7, 0.0, 1.0]})
    trials = pd.DataFrame({"trial": ["a", "b"], "variant": ["WD", "EP"],
                           "edge_popup.variant": ["wd", "ep"]})
    table = analysis.results.accuracy_at_steps(curves, trials, [600, 1000])
    rows = table.set_index(["variant", "step"])
    assert rows.loc[("WD", 600), "test_acc_mean"] == pytest.approx(0.6)
    assert rows.loc[("EP", 600), "test_acc_mean"] == 1.0  # stopped at 500, held
    assert 1000 not in table["step"].tolist()  # nobody reached it


def _check_study(grok, storage, name, *extra, size=TINY_TICKET):
    result = grok("sweep", name, "--quick", *size, "--storage", storage, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = storage / f"{name}-quick"
    assert (folder / "figure.png").stat().st_size > 10_000
    assert (folder / "summary.png").exists()
    loaded = analysis.load(str(folder))
    assert loaded.trials["finished"].all()
    return result, loaded


def test_pai_and_norm_control_studies_end_to_end(tmp_path, grok):
    storage = tmp_path / "s"
    small = ["--set", "train.steps=400", "--set", "base.train.steps=600"]
    result, loaded = _check_study(grok, storage, "pai", *small)
    assert sorted(loaded.members["variant"].unique()) == sorted(
        ["grokking ticket", "random", "snip", "grasp", "synflow"])
    at_init = loaded.members[loaded.members["variant"] != "grokking ticket"]
    assert (at_init["prune_step"] == 0).all() and len(loaded.members) == 10
    assert "variant" in result.stdout and "synflow" in result.stdout
    # the norm controls reuse the dense runs the pai study trained
    result, loaded = _check_study(grok, storage, "norm_control", *small)
    assert len(list((storage / "artifacts").iterdir())) == 1  # pai's dense runs, reused
    controls = loaded.members[loaded.members["recipe"] == "norm_control"]
    assert len(controls) == 4 and (controls["norm_ratio"] < 1).all()
    assert set(loaded.members["variant"]) == {"grokking ticket", "L1 norm-matched dense",
                                              "L2 norm-matched dense"}


def test_edge_popup_and_structure_studies_end_to_end(tmp_path, grok):
    storage = tmp_path / "s"
    # edge-popup at the tiny size: theta_mem (dense step 100, lr 0.01) memorises, 600 steps
    result = grok("sweep", "edge_popup", "--quick", *TINY, "--storage", storage, "--seeds", "0",
                  *sets("optim.lr=0.01", "edge_popup.start_step=100", "train.steps=600"))
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = analysis.load(str(storage / "edge_popup-quick"))
    assert "edge_popup table:" in result.stdout
    assert set(loaded.members["variant"]) == {
        "WD", "EP w/o WD", "EP w/ WD", "EP w/o WD, leakage only", "EP w/o WD, fraction 0.5",
        "EP w/o WD, authors' split"}
    assert (loaded.members["prune_step"] == 100).all()
    result, loaded = _check_study(grok, storage, "structure", "--seeds", "0", "--set",
                                  "train.steps=600", "--set", "base.train.steps=600", "--set",
                                  "base.train.checkpoint_every=250")
    assert "structure table:" in result.stdout
    assert loaded.curves["fourier_entropy"].notna().all()
    assert loaded.base_curves["fourier_entropy"].notna().all()
    table = analysis.structure.sweep_structure(loaded)
    assert table["step"].tolist() == [0, 250, 500, 600] and table["jaccard"].iloc[1:].gt(0).all()
    paper = grok("results", storage / "structure-quick", "--paper-figure", tmp_path / "f.png")
    assert paper.returncode == 0 and (tmp_path / "f.png").stat().st_size > 10_000


def test_jaccard_phases_follow_the_dense_runs_test_accuracy():
    from analysis.structure import half_drop_step, jaccard_phases
    structure = pd.DataFrame({"step": [0, 100, 200, 300, 400, 500, 600],
                              "jaccard": [None, 0.9, 0.8, 0.1, 0.3, 0.5, 0.05]})
    dense = pd.DataFrame({"step": [0, 100, 200, 300, 400, 500, 600],
                          "test_acc": [0.0, 0.0, 0.0, 0.05, 0.5, 0.9, 1.0]})
    phases = jaccard_phases(structure, dense)  # the first two intervals are left out
    assert phases == {"jaccard_memorised": 0.1, "jaccard_transition": 0.4,
                      "jaccard_generalised": 0.05}
    curve = pd.DataFrame({"step": [0, 10, 20, 30], "fourier_entropy": [3.0, 2.8, 2.0, 1.0]})
    assert half_drop_step(curve) == 20 and half_drop_step(curve.drop(columns="fourier_entropy")) is None


def test_tasks_and_text_studies_end_to_end(tmp_path, grok):
    storage = tmp_path / "s"
    short = [f"{key}.{name}" for key in ("train", "base.train")
             for name in ("steps=600", "checkpoint_every=300")]
    result, loaded = _check_study(grok, storage, "tasks", "--seeds", "0", *sets(*short), size=())
    assert set(loaded.members["variant"]) == {"polynomial regression", "sparse parity"}
    assert len(loaded.base) == 2 and loaded.base["t_mem"].notna().all()
    regression = loaded.curves.merge(loaded.trials[["trial", "variant"]], on="trial")
    regression = regression[regression["variant"] == "polynomial regression"]
    assert regression["train_acc"].iloc[-1] > 0.9  # R^2 of a memorised training set
    short = [setting.replace("600", "1200").replace("300", "600") for setting in short]
    result, loaded = _check_study(grok, storage, "text", "--seeds", "0", *sets(*short), size=())
    assert len(loaded.members) == 1 and loaded.base["final_train_acc"].iloc[0] > 0.9


@pytest.mark.parametrize("overrides, message", [
    (["task.name=text", "model.name=lstm", "task.corpus=aclimdb"], "task.data_dir"),
    (["task.name=text", "model.name=lstm", "task.corpus=aclimdb",
      "task.data_dir=/nonexistent/aclImdb"], "/nonexistent/aclImdb"),
    (["task.name=text", "model.name=mlp"], "model.name"),
    (["task.name=polynomial", "train.loss=hinge"], "regression"),
])
def test_bad_task_input_is_one_line_and_exit_2(overrides, message, grok):
    args = [part for override in overrides for part in ("--set", override)]
    result = grok("train", "dense", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr


def test_the_tasks_study_trains_the_polynomial_in_kumar_et_als_reading():
    """Fig. 2d: Kumar et al.'s two-layer network (40-500-1, phi(h) = h + h^2 / 2) on 200
    points, AdamW lr 1e-3, wd 1, 15k steps for the dense run and the ticket (8k at --quick);
    the authors' reading stays the engine's defaults for the task (4-layer ReLU MLP, 100
    points); parity keeps its settings."""
    for quick, steps in ((False, 15_000), (True, 8_000)):
        cells = [split_trial_config(c)[0]
                 for c in expand_cells(get_study("tasks").param_space(quick=quick))]
        polynomial, parity = cells
        assert polynomial.task.name == "polynomial" and parity.task.name == "parity"
        for config in (polynomial, polynomial.dense_base()):
            assert (config.task.n_train, config.model.activation, config.model.hidden_layers,
                    config.optim.lr, config.optim.weight_decay, config.train.steps) == (
                200, "quadratic", 1, 1e-3, 1.0, steps)
        assert parity.model.activation == "relu" and parity.optim.name == "sgd"
    model = model_for(polynomial)
    assert [spec.shape for spec in model.specs.values()] == [(40, 500), (500, 1)]
    authors = ExperimentConfig().with_overrides(["task.name=polynomial"])
    assert (authors.task.train_examples, authors.model.activation,
            authors.model.hidden_layers) == (100, "relu", None)


def test_the_transformer_study_and_its_search_train_the_reading_where_every_seed_groks():
    """The transformer study: the authors' architecture (no W_pos, no MLP biases) with weight
    decay 2, ticket and dense run alike; its critical-ratio search (--set
    model.name=transformer) prunes those same dense runs (one key), trains its tickets
    without weight decay, and lives beside the MLP's search under its own name."""
    from sweeps.critical_ratio_search import CriticalRequest

    (cell,) = expand_cells(get_study("transformer").param_space())
    ticket = split_trial_config(cell)[0]
    dense = ticket.dense_base()
    for config in (ticket, dense):
        assert (config.model.name, config.model.pos_embed, config.model.biases) == (
            "transformer", False, False)
        assert (config.optim.lr, config.optim.weight_decay) == (1e-3, 2.0)
    assert dense.train.steps == 30_000 and ticket.prune.rate == 0.6
    search = CriticalRequest(overrides=["model.name=transformer"]).resolved()
    searched = split_trial_config({**search.template(), "rates": [0.8]})[0]
    assert searched.dense_key() == ticket.dense_key()
    assert searched.optim.weight_decay == 0.0 and searched.train.steps == 10_000
    assert (search.search_name, search.seeds, search.trials) == (
        "critical_ratio_search-transformer", [0, 1, 2], 12)
    mlp = CriticalRequest().resolved()
    assert (mlp.search_name, mlp.trials) == ("critical_ratio_search", 40)
    assert split_trial_config({**mlp.template(), "rates": [0.8]})[0].model.name == "mlp"


def test_the_operations_study_trains_each_operation_at_its_own_measured_settings():
    """Fig. 2c: every operation at the authors' wd 2 and 50k steps (dense run and ticket), pairs
    a >= b, each with its own train fraction (search_spaces.operations.OPERATION_TASKS);
    labelled by the operation, one dense key per operation."""
    cells = [split_trial_config(c)[0]
             for c in expand_cells(get_study("operations").param_space())]
    assert [(c.task.op, c.task.train_fraction) for c in cells] == [
        ("sub", 0.5), ("mul", 0.4), ("div", 0.5), ("x2_plus_y2", 0.4), ("x2_xy_y2", 0.7),
        ("x3_xy", 0.7)]
    for config in cells:
        dense = config.dense_base()
        assert (config.optim.weight_decay, dense.optim.weight_decay) == (2.0, 2.0)
        assert (config.train.steps, dense.train.steps, config.train.stop_margin) == (
            50_000, 50_000, 2000)
        assert dense.task == config.task and config.task.pairs == "ge"
    assert len({c.dense_key() for c in cells}) == 6
    labels = [c["variant"]["label"] for c in expand_cells(get_study("operations").param_space())]
    assert labels == [c.task.op for c in cells]


def test_the_real_quick_headline_shows_the_effect_through_the_cli(tmp_path, grok):
    """The one end-to-end run of a study at its real quick size (no tiny --set): p=67, full
    width, lr 2e-3, a 20k-step dense run. Seed 2 is the seed of the quick calibration with the
    widest margin (ticket 430 vs dense 12,950 here; other seeds 12-19x), so another CPU's t_gen
    keeps the headline's 1/10."""
    result = grok("sweep", "headline", "--quick", "--seeds", "2", "--storage", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = analysis.load(str(tmp_path / "headline-quick"))
    assert loaded.base["t_gen"].notna().all() and loaded.members["t_gen"].notna().all()
    dense, ticket = loaded.base["t_gen"].iloc[0], loaded.members["t_gen"].iloc[0]
    assert ticket * 10 <= dense, (ticket, dense)
