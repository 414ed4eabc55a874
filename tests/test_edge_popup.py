"""Edge-popup (Sec. 5.2, Table 1): straight-through score gradients against autograd, exact
per-tensor keep counts, frozen weights left bitwise unchanged, cohort members equal to solo runs,
the three variants through the recipe, and bad input."""
import pytest
import torch

from grok_core.config import ExperimentConfig
from grok_core.edge_popup import (ScoreForward, initial_scores, keep_counts, score_name,
                                  top_score_masks)
from grok_core.models import MLP, Transformer, stack_members
from grok_core.recipes import model_for, run_experiment
from grok_core.store import ArtifactStore
from grok_core.tasks import build_dataset
from grok_core.training import MemberSpec, train_cohort

TINY = ["task.p=11", "task.pairs=all", "model.d_emb=12", "model.d_hidden=8", "optim.lr=0.01"]


def _members(model, seeds):
    return [{**model.init_member(s), **initial_scores(model, s)} for s in seeds]


@pytest.mark.parametrize("model_name", ["mlp", "transformer"])
def test_score_gradients_are_straight_through_as_autograd_computes_them(model_name):
    config = ExperimentConfig().with_overrides([*TINY, f"model.name={model_name}"])
    model, train = model_for(config), build_dataset(config.task).train
    params = {n: t.double() for n, t in stack_members(_members(model, [0, 1])).items()}
    forward = ScoreForward(model, [0.6, 0.3], train_weights=True)
    _, _, grads = forward.loss_and_grads(params, train.inputs, train.labels, torch.float64)

    # independent: the mask as a detached step with the identity's gradient on the scores
    leaves = {n: t.clone().requires_grad_(True) for n, t in params.items()}
    masks = top_score_masks(params, forward.counts)
    effective = {n: leaves[n] * (masks[n] + leaves[score_name(n)] - leaves[score_name(n)].detach())
                 if n in masks else leaves[n] for n in model.specs}
    logits = (MLP.naive_logits(effective, train.inputs, model.vocab) if model_name == "mlp"
              else model.naive_logits(effective, train.inputs))
    loss = sum(torch.nn.functional.cross_entropy(logits[k], train.labels) for k in range(2))
    expected = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    for name in params:
        torch.testing.assert_close(grads[name], expected[name], rtol=1e-7, atol=1e-10)


def test_masks_keep_the_top_scores_exactly_per_tensor_and_member():
    config = ExperimentConfig().with_overrides(TINY)
    model = model_for(config)
    params = stack_members(_members(model, [0, 1, 2]))
    rates = [0.6, 0.0, 0.95]
    counts = keep_counts(model, rates)
    masks = top_score_masks(params, counts)
    for name in model.prunable:
        for k in range(3):
            kept = masks[name][k].bool()
            assert int(kept.sum()) == counts[name][k]
            scores = params[score_name(name)][k].abs()
            if 0 < counts[name][k] < scores.numel():
                assert scores[kept].min() > scores[~kept].max()
    assert counts["W_in"] == [39, 96, 5]  # 96 weights: floor(0.6 * 96) = 57 removed, ...
    assert int(masks["W_in"][2].sum()) == 5  # ... floor(0.95 * 96) = 91


def _state_recorder():
    states = []

    class Record:
        def on_checkpoint(self, *args):
            pass

        def on_eval(self, *args):
            pass

        def on_state(self, state):
            states.append(state)
    return Record(), states


def test_ep_without_weight_decay_leaves_the_weights_bitwise_unchanged():
    config = ExperimentConfig().with_overrides(
        [*TINY, "recipe=edge_popup", "edge_popup.variant=ep", "train.steps=60",
         "train.eval_every=10"])
    model = model_for(config)
    init = _members(model, [4])[0]
    callbacks, states = _state_recorder()
    result = train_cohort(config, [MemberSpec(seed=4, init=init, labels={"pruning_rate": 0.6})],
                          callbacks=callbacks, state_every=50)
    state = states[-1].params
    for name in model.specs:
        assert torch.equal(state[name][0], init[name]), name
    moved = [n for n in model.prunable if not torch.equal(state[score_name(n)][0],
                                                          init[score_name(n)])]
    assert moved == list(model.prunable)  # the scores did learn
    counts = keep_counts(model, [0.6])
    for name in model.prunable:  # the result: the frozen weights under the final learned mask
        final = result.final_params[name][0]
        kept = final != 0
        assert torch.equal(final[kept], init[name][kept]) and int(kept.sum()) == counts[name][0]
    assert result.curves["test_acc"].iloc[-1] != result.curves["test_acc"].iloc[0]


@pytest.mark.parametrize("variant", ["ep", "ep_wd"])
def test_an_edge_popup_member_of_a_cohort_equals_its_solo_run(variant):
    config = ExperimentConfig().with_overrides(
        [*TINY, "recipe=edge_popup", f"edge_popup.variant={variant}", "train.steps=40",
         "train.eval_every=5"])
    model = model_for(config)
    inits = _members(model, [0, 1])
    specs = [MemberSpec(seed=s, init=i, labels={"pruning_rate": r})
             for s, i, r in zip([0, 1], inits, [0.6, 0.8])]
    together = train_cohort(config, specs)
    alone = train_cohort(config, [specs[1]])
    for name in model.specs:
        torch.testing.assert_close(together.final_params[name][1], alone.final_params[name][0],
                                   rtol=0, atol=0)


def test_the_three_variants_through_the_recipe(tmp_path):
    store = ArtifactStore(str(tmp_path))
    base = [*TINY, "recipe=edge_popup", "edge_popup.start_step=100", "train.steps=30",
            "train.eval_every=10"]
    rows = {}
    for variant in ("ep", "ep_wd", "wd"):
        config = ExperimentConfig().with_overrides([*base, f"edge_popup.variant={variant}"])
        result = run_experiment(config, [0, 1], store, rates=[0.5, 0.6])
        rows[variant] = result.members
    assert len(rows["ep"]) == len(rows["ep_wd"]) == 4 and len(rows["wd"]) == 2
    assert set(rows["wd"]["pruning_rate"]) == {0.0}
    assert rows["ep"]["prune_step"].eq(100).all()
    dense = config.dense_base()
    assert dense.train.steps == 100 and ArtifactStore(str(tmp_path)).has_dense(
        dense.dense_key(), 1)
    # the same theta_mem: every variant starts at the dense run's test accuracy at step 100
    assert rows["ep"]["start_test_acc"].tolist()[::2] == rows["wd"]["start_test_acc"].tolist()


@pytest.mark.parametrize("overrides, message", [
    (["edge_popup.start_step=1500", "base.train.steps=3000"], "edge_popup.start_step"),
    (["prune.method=snip"], "prune.method"),
    (["edge_popup.variant=popup"], "edge_popup.variant"),
])
def test_edge_popup_bad_input_one_line_exit_2(tmp_path, overrides, message, grok):
    args = [arg for o in overrides for arg in ("--set", o)]
    result = grok("train", "edge_popup", *args, "--out", tmp_path / "o")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_transformer_edge_popup_trains():
    config = ExperimentConfig().with_overrides(
        [*TINY, "model.name=transformer", "recipe=edge_popup", "train.steps=20",
         "train.eval_every=5"])
    model = model_for(config)
    assert isinstance(model, Transformer)
    inits = _members(model, [0])
    result = train_cohort(config, [MemberSpec(seed=0, init=inits[0], labels={"pruning_rate": 0.5})])
    assert torch.isfinite(torch.tensor(result.curves["train_loss"].to_numpy())).all()


def test_the_threshold_tracker_finds_exactly_what_a_full_selection_finds():
    from grok_core.edge_popup import ThresholdTracker, _thresholds
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(3, 5000, generator=generator)
    tracker, keeps = ThresholdTracker(), [2000, 1, 4999]
    for step in range(60):
        size = 0.3 if step % 20 == 19 else 1e-3  # now and then a jump: the full selection
        scores = (scores + size * torch.randn(3, 5000, generator=generator)).abs()
        if step == 30:
            scores[0, :10] = scores[0, 2000]  # ties
        torch.testing.assert_close(tracker.thresholds("W", scores, keeps),
                                   _thresholds(scores, keeps), rtol=0, atol=0)


def _pairs(split):
    return {tuple(row) for row in split.inputs.tolist()}


def test_mem_split_seed_trains_theta_mem_on_another_split_so_test_pairs_leak():
    """The authors' Table 1 reading (edge_popup.mem_split_seed): theta_mem learned split 0 while
    edge-popup trains and is tested on split 1, so about half of edge-popup's test pairs (at
    fraction 0.5) were theta_mem's training pairs; without the flag, none are."""
    leaky = ExperimentConfig().with_overrides(
        ["task.p=11", "task.pairs=all", "task.train_fraction=0.5", "recipe=edge_popup",
         "task.split_seed=1", "edge_popup.mem_split_seed=0"])
    honest = ExperimentConfig().with_overrides(
        ["task.p=11", "task.pairs=all", "task.train_fraction=0.5", "recipe=edge_popup"])
    for config, overlap in ((leaky, (0.35, 0.65)), (honest, (0.0, 0.0))):
        assert config.dense_base().task.split_seed == 0
        mem_train = _pairs(build_dataset(config.dense_base().task).train)
        ep_test = _pairs(build_dataset(config.task).test)
        share = len(ep_test & mem_train) / len(ep_test)
        assert overlap[0] <= share <= overlap[1], share
    # theta_mem is one dense run for both readings: the flag only moves edge-popup's split
    assert leaky.dense_key() == honest.dense_key()
    assert leaky.task.split_seed == 1 and honest.task.split_seed == 0


def test_a_start_that_already_generalised_is_flagged_and_warned(tmp_path, caplog):
    """theta_mem that fits its training split but already scores >= 0.5 on the test split (p=11,
    80 % of the pairs for training: test accuracy 0.8 by step 300) is no memorising start:
    column start_memorising=False and one warning line per seed. At 40 % (train 1.0, test 0.29
    at step 200) it is one: no warning."""
    store = ArtifactStore(str(tmp_path))
    seen = {}
    for fraction, step in ((0.8, 300), (0.4, 200)):
        config = ExperimentConfig().with_overrides(
            [*TINY, "recipe=edge_popup", f"task.train_fraction={fraction}",
             f"edge_popup.start_step={step}", "train.steps=10", "train.eval_every=10"])
        caplog.clear()
        with caplog.at_level("WARNING", logger="grok.recipes"):
            rows = run_experiment(config, [0], store, rates=[0.6]).members
        seen[fraction] = (rows["start_memorising"].tolist(), float(rows["start_test_acc"][0]),
                          [r.message for r in caplog.records if "memorising start" in r.message])
    flags, test_acc, lines = seen[0.8]
    assert flags == [False] and test_acc >= 0.5 and len(lines) == 1
    assert "seed 0" in lines[0] and "start_memorising=False" in lines[0]
    flags, test_acc, lines = seen[0.4]
    assert flags == [True] and test_acc < 0.5 and lines == []
