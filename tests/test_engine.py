"""The training engine: exact shortcut, exact backward, AdamW, cohort == solo, determinism."""
import pandas as pd
import pytest
import torch

from grok_core import native
from grok_core.config import ModelConfig
from grok_core.models import MLP, CohortModel, build_model, transposed_cross_entropy
from grok_core.models.cohort import product_transposed
from grok_core.optim import CohortAdamW, _fused_available
from grok_core.pruning import magnitude_mask
from grok_core.training import Callbacks, MemberSpec, train_cohort


def _float64(params):
    return {k: v.double() for k, v in params.items()}


def test_mlp_shortcut_equals_naive_form_in_float64():
    model = MLP(ModelConfig(), 67, 67)
    params = _float64(model.init_cohort([0, 1]))
    inputs = torch.cartesian_prod(torch.arange(67), torch.arange(67))
    shortcut = model.logits(params, inputs)
    naive = MLP.naive_logits(params, inputs, 67)
    assert torch.allclose(shortcut, naive, rtol=0, atol=1e-12)


def _mlp(_pos_embed, _biases):
    return MLP(ModelConfig(d_emb=20, d_hidden=8), 11, 11)


def _transformer(pos_embed, biases):
    from grok_core.models import Transformer
    return Transformer(ModelConfig(name="transformer", d_emb=12, d_hidden=10,
                                   pos_embed=pos_embed, biases=biases), 11, 11)


@pytest.mark.parametrize("build, pos_embed, biases", [
    (_mlp, True, True), (_transformer, False, False), (_transformer, True, True)])
@pytest.mark.parametrize("masked", [False, True])
def test_hand_written_backward_equals_autograd(build, pos_embed, biases, masked):
    model = build(pos_embed, biases)
    params = _float64(model.init_cohort([0, 1, 2]))
    generator = torch.Generator().manual_seed(2)
    for name in ("b_in", "b_out"):  # the transformer's biases are zero at init: exercise them
        if name in params:
            params[name] = torch.randn(params[name].shape, generator=generator, dtype=torch.float64)
    masks = None
    if masked:
        masks = {n: torch.stack([magnitude_mask({n: params[n][k]}, 0.6)[n] for k in range(3)])
                 .double() for n in model.prunable}
    inputs = torch.randint(0, 11, (60, 2), generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 11, (60,), generator=torch.Generator().manual_seed(1))
    loss, acc, grads = model.loss_and_grads(params, masks, inputs, labels, torch.float64)
    ref_loss, ref_acc, ref_grads = CohortModel.loss_and_grads(
        model, params, masks, inputs, labels, torch.float64)
    assert torch.allclose(loss.double(), ref_loss.double(), atol=1e-6)
    assert torch.equal(acc, ref_acc)
    assert set(grads) == set(ref_grads)
    for name in grads:
        assert torch.allclose(grads[name], ref_grads[name], rtol=0, atol=1e-12), name
        if masks and name in masks:
            assert (grads[name][masks[name] == 0] == 0).all()


def test_cohort_adamw_matches_torch_adamw():
    generator = torch.Generator().manual_seed(0)
    start = {"w": torch.randn(2, 5, 3, generator=generator), "v": torch.randn(2, 4, generator=generator)}
    grads_seq = [{n: torch.randn(t.shape, generator=generator) for n, t in start.items()}
                 for _ in range(20)]
    lrs, wds = [1e-2, 3e-3], [1.0, 0.1]
    for uniform, fused in [(True, True), (False, True), (False, False)]:
        lr, wd = ([lrs[0]] * 2, [wds[0]] * 2) if uniform else (lrs, wds)
        params = {n: t.clone() for n, t in start.items()}
        ours = CohortAdamW(params, lr=lr, weight_decay=wd, betas=(0.9, 0.98), fused=fused)
        for grads in grads_seq:
            ours.step(grads)
        for k in range(2):
            ref = {n: torch.nn.Parameter(t[k].clone()) for n, t in start.items()}
            opt = torch.optim.AdamW(ref.values(), lr=lr[k], weight_decay=wd[k], betas=(0.9, 0.98))
            for grads in grads_seq:
                for n, p in ref.items():
                    p.grad = grads[n][k].clone()
                opt.step()
            for n in ref:
                assert torch.allclose(params[n][k], ref[n].detach(), rtol=1e-6, atol=1e-7), (uniform, n)


def test_fused_adamw_is_used_on_this_machine():
    # the fast path must not silently fall back on the CPUs we benchmark on
    assert _fused_available(torch.device("cpu"))


def _member_curves(result, k):
    return result.curves[result.curves["member"] == k].drop(columns="member").reset_index(drop=True)


def _ticket_like_members(config, seeds):
    """Members with their own masks and (for two of them) their own lr / weight decay."""
    model = build_model(config.model, config.task.p, config.task.p)
    members = []
    for i, seed in enumerate(seeds):
        theta = model.init_member(seed + 100)
        mask = magnitude_mask({n: theta[n] for n in model.prunable}, 0.3 + 0.1 * i)
        members.append(MemberSpec(seed=seed, mask=mask,
                                  lr=[None, 0.02, None, 0.005][i],
                                  weight_decay=[None, 0.5, 0.0, None][i]))
    return members


@pytest.mark.parametrize("model_name", ["mlp", "transformer"])
def test_a_member_of_a_cohort_trains_like_the_same_config_alone(small_config, model_name):
    config = small_config.with_overrides([f"model.name={model_name}", "train.steps=300"]
                                         + (["model.d_hidden=16"] if model_name == "mlp" else []))
    members = _ticket_like_members(config, [0, 1, 2, 3])
    cohort = train_cohort(config, members)
    for k, member in enumerate(members):
        solo = train_cohort(config, [member])
        mine, alone = _member_curves(cohort, k), _member_curves(solo, 0)
        # bitwise on the CPUs measured here; the tolerance leaves room for other BLAS kernels
        pd.testing.assert_frame_equal(mine, alone, rtol=1e-5, atol=1e-6)
        for key in ("t_mem", "t_gen", "steps_run"):
            assert cohort.summaries[k][key] == solo.summaries[0][key]
        for name, tensor in solo.final_params.items():
            assert torch.allclose(cohort.final_params[name][k], tensor[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_name", ["mlp", "transformer"])
def test_a_uniform_cohort_member_trains_like_it_alone(small_config, model_name):
    # members with one lr and weight decay: the case where one optimiser call over several
    # members' rows would be tempting, and rounds differently (vector body against tail)
    config = small_config.with_overrides([
        f"model.name={model_name}", "train.steps=150", "task.p=23", "task.pairs=all",
        "task.train_fraction=0.5", "model.d_emb=37", "model.d_hidden=19", "optim.lr=0.001"])
    cohort = train_cohort(config, [MemberSpec(seed=s) for s in range(5)])
    for k in range(5):
        solo = train_cohort(config, [MemberSpec(seed=k)])
        for name, tensor in solo.final_params.items():
            assert torch.allclose(cohort.final_params[name][k], tensor[0], rtol=1e-5, atol=1e-6)


def test_same_seed_same_config_identical_results(small_config):
    first = train_cohort(small_config, [MemberSpec(seed=3), MemberSpec(seed=4)])
    second = train_cohort(small_config, [MemberSpec(seed=3), MemberSpec(seed=4)])
    pd.testing.assert_frame_equal(first.curves, second.curves, check_exact=True)
    other = train_cohort(small_config, [MemberSpec(seed=5), MemberSpec(seed=4)])
    assert not first.curves[first.curves.member == 0].equals(other.curves[other.curves.member == 0])


class _Recorder(Callbacks):
    def __init__(self):
        self.checkpoints = {}

    def on_checkpoint(self, step, params, members):
        self.checkpoints[step] = params


def test_pruned_weights_stay_zero_and_checkpoints_follow_the_cadence(small_config):
    model = MLP(small_config.model, 13, 13)
    mask = magnitude_mask({n: model.init_member(9)[n] for n in model.prunable}, 0.7)
    recorder = _Recorder()
    result = train_cohort(small_config, [MemberSpec(seed=0, mask=mask)], callbacks=recorder)
    assert sorted(recorder.checkpoints) == [0, 50, 100, 150, 200]
    for params in list(recorder.checkpoints.values()) + [result.final_params]:
        for name, keep in mask.items():
            assert (params[name][0][~keep] == 0).all()
            assert (params[name][0][keep] != 0).all()
    # the curve's norms are those of the masked weights
    last = result.curves.iloc[-1]
    l2 = torch.sqrt(sum((t[0].double() ** 2).sum() for t in result.final_params.values()))
    assert last["l2_norm"] == pytest.approx(l2.item(), rel=1e-5)


@pytest.mark.parametrize("model_name", ["mlp", "transformer"])
def test_what_a_run_hands_out_is_free_of_inference_mode(grokking_config, model_name):
    """The hand-written models train in ``torch.inference_mode``; what leaves a run (its
    checkpoints and final weights; the MLP's with a member that stops early and one that does
    not) is made of normal tensors, which a pruning method may differentiate or change in
    place."""
    config = grokking_config.with_overrides([f"model.name={model_name}", "train.steps=1500",
                                             "train.stop_margin=100"])
    assert not build_model(config.model, 23, 23).needs_autograd
    recorder = _Recorder()
    result = train_cohort(config, [MemberSpec(seed=0, lr=0.02), MemberSpec(seed=1, lr=0.0)],
                          callbacks=recorder)
    if model_name == "mlp":  # (this transformer does not generalise in 1500 steps)
        assert result.summaries[0]["steps_run"] < result.summaries[1]["steps_run"] == 1500
    handed_out = [t for params in [*recorder.checkpoints.values(), result.final_params]
                  for t in params.values()]
    assert not any(t.is_inference() for t in handed_out)
    handed_out[0].requires_grad_(True).sum().backward()
    handed_out[-1].mul_(2.0)


def test_a_model_computing_its_gradients_by_hand_says_so():
    mlp = ModelConfig()
    assert not build_model(mlp, 13, 13).needs_autograd
    assert build_model(mlp, 13, 13, loss="mse").needs_autograd  # the generic (autograd) path


def test_t_mem_is_exact_to_the_step_and_curves_hold_every_eval(small_config):
    result = train_cohort(small_config, [MemberSpec(seed=0)])
    curves = result.curves
    assert curves["step"].tolist() == list(range(0, 201, 5))
    assert list(curves.columns) == ["member", "step", "train_loss", "train_acc", "test_loss",
                                    "test_acc", "l1_norm", "l2_norm"]
    # steps between evaluations skip their loss (with_loss): an evaluated one never does
    assert curves.notna().all().all()
    summary = result.summaries[0]
    assert summary["t_mem"] is not None
    # train accuracy is tracked every step: t_mem need not be a multiple of eval_every, and the
    # evaluated curve cannot have crossed the threshold before it
    crossed = curves[curves["train_acc"] >= 0.95]["step"]
    assert crossed.iloc[0] - 5 < summary["t_mem"] <= crossed.iloc[0]


def test_early_stop_once_every_member_held_generalisation(grokking_config):
    config = grokking_config.with_overrides(["train.steps=3000", "train.stop_margin=100"])
    result = train_cohort(config, [MemberSpec(seed=0), MemberSpec(seed=1)])
    assert result.steps_run < 3000
    for summary in result.summaries:
        assert summary["t_gen"] is not None
        assert summary["steps_run"] - summary["t_gen"] >= 100
    assert result.steps_run == max(s["steps_run"] for s in result.summaries)


def _stop_apart_members():
    """Three members that generalise at different times (one without weight decay, late)."""
    return [MemberSpec(seed=0), MemberSpec(seed=1, lr=0.02), MemberSpec(seed=2, weight_decay=0.1)]


def test_members_stop_on_their_own_and_each_equals_its_solo_run(grokking_config):
    config = grokking_config.with_overrides(["train.steps=2500", "train.stop_margin=100"])
    members = _stop_apart_members()
    recorder = _Recorder()
    seen = []
    recorder.on_checkpoint = lambda step, params, who: seen.append((step, list(who)))
    cohort = train_cohort(config, members, callbacks=recorder)
    stops = [s["steps_run"] for s in cohort.summaries]
    assert len(set(stops)) == 3, stops  # each left the cohort at its own step
    for k, member in enumerate(members):
        alone = train_cohort(config, [member])
        mine = cohort.curves[cohort.curves.member == k].drop(columns="member")
        pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                      alone.curves.drop(columns="member"), rtol=1e-5, atol=1e-6)
        assert mine["step"].iloc[-1] == stops[k] == alone.summaries[0]["steps_run"]
        for name, tensor in alone.final_params.items():
            assert torch.allclose(cohort.final_params[name][k], tensor[0], rtol=1e-4, atol=1e-6)
        # a stopped member's last weights were handed over at its stop step, once
        assert [step for step, who in seen if k in who][-1] == stops[k]
    assert len({(step, tuple(who)) for step, who in seen}) == len(seen)


BOUND_PASS_RUNS = {  # model: (overrides, members); the transformer's 6 members in two chunks
    "mlp": (["train.steps=2500", "train.stop_margin=100"], 3),
    "mlp minibatches": (["train.steps=300", "train.batch_size=64"], 2),
    "transformer": (["model.name=transformer", "model.pos_embed=false", "model.biases=false",
                     "train.steps=300"], 6),
}


@pytest.mark.parametrize("run", sorted(BOUND_PASS_RUNS))
def test_the_bound_training_pass_trains_as_loss_and_grads_does(grokking_config, run,
                                                               monkeypatch):
    """The training step's pass bound to its weights once (``CohortModel.training_pass``:
    pointers taken, outputs made once) against ``loss_and_grads`` called at every step: the
    same curves, summaries and final weights, bit for bit. Masked members with their own lr and
    weight decay; the MLP's stop at different steps (bound again as they leave), or see another
    minibatch at every step (the same binding); the transformer's run in two chunks."""
    if not native.blas_available():
        pytest.skip("the models bind their pass only where the kernels have PyTorch's BLAS")
    overrides, count = BOUND_PASS_RUNS[run]
    config = grokking_config.with_overrides(overrides)
    model = build_model(config.model, config.task.p, config.task.p)
    masks = [magnitude_mask({n: model.init_member(k + 50)[n] for n in model.prunable}, 0.1)
             for k in range(count)]
    members = [MemberSpec(seed=k, mask=masks[k], lr=[None, 0.02, 0.005][k % 3],
                          weight_decay=[None, 0.5, None][k % 3]) for k in range(count)]
    model_class = type(model)
    bound = []
    training_pass = model_class.training_pass
    monkeypatch.setattr(model_class, "training_pass",
                        lambda *a: bound.append(training_pass(*a)) or bound[-1])
    by_bound_pass = train_cohort(config, members)
    assert bound and all(p is not None for p in bound)  # the path under test was taken
    if run == "mlp":  # bound again as each member left (the last one's stop ends the run)
        assert len({s["steps_run"] for s in by_bound_pass.summaries}) == 3 == len(bound)
    if run == "mlp minibatches":  # one binding: the examples are given to each call
        assert len(bound) == 1
    monkeypatch.setattr(model_class, "training_pass", lambda *a: None)
    by_calls = train_cohort(config, members)
    pd.testing.assert_frame_equal(by_bound_pass.curves, by_calls.curves, check_exact=True)
    assert by_bound_pass.summaries == by_calls.summaries
    for name, tensor in by_calls.final_params.items():
        assert torch.equal(by_bound_pass.final_params[name], tensor)


def test_confident_predictions_keep_their_gradient_in_the_float64_loss():
    """The MLP's fast cross-entropy equals a float64 log-softmax where float32 rounds the
    label's gradient and the loss to zero (margins of ~25 nats, as after memorisation)."""
    generator = torch.Generator().manual_seed(0)
    k_count, classes, n = 2, 11, 50
    labels = torch.randint(0, classes, (n,), generator=generator)
    logits = torch.rand(k_count, classes, n, generator=generator) * 6 - 3  # [K, C, N]
    logits.scatter_(1, labels.view(1, 1, n).expand(k_count, 1, n), 25.0)

    reference = logits.double().requires_grad_(True)
    ref_loss = -torch.log_softmax(reference, 1).gather(
        1, labels.view(1, 1, n).expand(k_count, 1, n)).mean(-1).sum()
    (ref_grad,) = torch.autograd.grad(ref_loss, reference)

    loss, acc, grad = transposed_cross_entropy(logits, labels, torch.float64, True)
    assert acc.tolist() == [1.0, 1.0]
    assert 0 < loss.sum().item() < 1e-8
    assert loss.sum().item() == pytest.approx(ref_loss.item(), rel=1e-5)
    assert torch.allclose(grad.double(), ref_grad, rtol=1e-5, atol=0)

    # float32 loses exactly this: 1 - p_y rounds to 0, and so does the loss
    loss32, _, grad32 = transposed_cross_entropy(logits, labels, torch.float32, True)
    label_grad32 = grad32.gather(1, labels.view(1, 1, n).expand(k_count, 1, n))
    assert loss32.sum().item() == 0.0 and (label_grad32 == 0).all()


def test_early_stop_on_a_checkpoint_step_checkpoints_once(grokking_config):
    config = grokking_config.with_overrides(["train.steps=3000", "train.stop_margin=100",
                                             "train.checkpoint_every=10"])
    recorder = _Recorder()
    steps = []
    recorder.on_checkpoint = lambda step, params, members: steps.append(step)
    result = train_cohort(config, [MemberSpec(seed=0)], callbacks=recorder)
    assert result.steps_run < 3000 and steps[-1] == result.steps_run
    assert len(steps) == len(set(steps))


@pytest.mark.parametrize("pos_embed, biases", [(True, True), (False, False)])
def test_transformer_token_tables_equal_the_plain_form_in_float64(pos_embed, biases):
    from grok_core.models import Transformer
    model = Transformer(ModelConfig(name="transformer", pos_embed=pos_embed, biases=biases), 23, 23)
    params = _float64(model.init_cohort([0, 1]))
    if biases:  # zero at init: give them values so they are really exercised
        params["b_in"] = torch.randn_like(params["b_in"])
        params["b_out"] = torch.randn_like(params["b_out"])
    inputs = torch.cartesian_prod(torch.arange(23), torch.arange(23))
    assert torch.allclose(model.logits(params, inputs), model.naive_logits(params, inputs),
                          rtol=0, atol=1e-10)


class _StateKeeper(Callbacks):
    def __init__(self):
        self.states = {}

    def on_state(self, state):
        self.states[state.step] = state.to_bytes()  # through bytes, as a checkpoint would


def test_a_run_resumed_from_its_state_equals_the_uninterrupted_run(grokking_config):
    from grok_core.training import TrainingState
    config = grokking_config.with_overrides(["train.steps=600", "train.stop_margin=50"])
    members = _ticket_like_members(config, [0, 1])
    keeper = _StateKeeper()
    whole = train_cohort(config, members, callbacks=keeper, state_every=150)
    assert sorted(keeper.states) == [150, 300, 450]
    resumed = train_cohort(config, members, resume=TrainingState.from_bytes(keeper.states[300]))
    pd.testing.assert_frame_equal(resumed.curves, whole.curves, check_exact=True)
    assert resumed.summaries == whole.summaries
    for name in whole.final_params:
        assert torch.equal(resumed.final_params[name], whole.final_params[name])


def test_a_run_resumed_after_some_members_stopped_equals_the_uninterrupted_run(grokking_config):
    from grok_core.training import TrainingState
    config = grokking_config.with_overrides(["train.steps=2500", "train.stop_margin=100"])
    members = _stop_apart_members()
    keeper = _StateKeeper()
    whole = train_cohort(config, members, callbacks=keeper, state_every=100)
    first_stop = min(s["steps_run"] for s in whole.summaries)
    step = min(s for s in keeper.states if s > first_stop)
    state = TrainingState.from_bytes(keeper.states[step])
    assert len(state.active) < len(members)
    resumed = train_cohort(config, members, resume=state)
    pd.testing.assert_frame_equal(resumed.curves, whole.curves, check_exact=True)
    assert resumed.summaries == whole.summaries
    for name in whole.final_params:
        assert torch.equal(resumed.final_params[name], whole.final_params[name])


def test_the_model_registry_holds_the_names_configs_accept_and_builds_each():
    from grok_core.config import MODELS
    from grok_core.models import MODEL_REGISTRY, LSTMClassifier, Transformer, VectorMLP

    assert list(MODEL_REGISTRY) == list(MODELS)
    assert isinstance(build_model(ModelConfig(name="transformer"), 7, 7), Transformer)
    assert isinstance(build_model(ModelConfig(), 7, 7), MLP)
    vector = build_model(ModelConfig(), 40, 1, "vectors", "mse", "polynomial")
    assert isinstance(vector, VectorMLP) and not vector.biases  # the task's own layout
    assert isinstance(build_model(ModelConfig(name="lstm"), 12, 2, "sequences"), LSTMClassifier)
    with pytest.raises(ValueError, match="takes tokens inputs, not sequences"):
        build_model(ModelConfig(name="transformer"), 7, 7, "sequences")


def test_a_ticket_at_rate_0_is_its_dense_run(tmp_path, grokking_config):
    # an all-ones mask changes nothing: the unpruned "ticket" memorises and generalises at the
    # dense run's steps, which is why a sweep may read rate 0 from its dense runs
    from conftest import as_ticket
    from grok_core.recipes import run_experiment
    from grok_core.store import ArtifactStore

    result = run_experiment(as_ticket(grokking_config), [0, 1], ArtifactStore(tmp_path),
                            rates=[0.0])
    tickets = result.members.sort_values("seed")[["seed", "t_mem", "t_gen"]]
    dense = result.base_members.sort_values("seed")[["seed", "t_mem", "t_gen"]]
    assert tickets["t_gen"].notna().all()
    assert tickets.reset_index(drop=True).equals(dense.reset_index(drop=True).astype(tickets.dtypes))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_weight_gradient_of_the_rows_is_the_same_bits_in_either_product_form(dtype):
    """On a CPU in float32 both models form (W_out W_U)'s gradient as (a b)^T, faster than
    b^T a^T; their stored runs were trained with b^T a^T, so the two must agree to the bit: over
    hidden and class widths, example counts (a minibatch's to the whole split's) and cohort
    sizes, with a [K, C, N] in the MLP's layout and as a transposed view of [K, N, C] (the
    transformer's). In float64, where they differ in the last bits, b^T a^T is kept."""
    generator = torch.Generator().manual_seed(0)
    for hidden, classes in ((48, 67), (128, 67), (16, 31)):
        for n in (1, 7, 64, 911, 1367):
            for k in (1, 3, 8):
                b = torch.randn(k, n, hidden, generator=generator, dtype=dtype).relu()
                rows = torch.randn(k, n, classes, generator=generator, dtype=dtype)
                for a in (rows.transpose(1, 2).contiguous(), rows.transpose(1, 2)):
                    expected = torch.bmm(b.transpose(1, 2), a.transpose(1, 2))
                    got = product_transposed(a, b)
                    assert got.is_contiguous() and torch.equal(got, expected), (hidden, n, k)
