"""Pruning methods and controls (issue 9 so far): each scorer against an independent computation
on a tiny network, exact counts, SynFlow's closed form, scoring the transformer, pruning at
initialisation without a dense run, the norm-matched control, and structure over training."""
import pandas as pd
import pytest
import torch

from grok_core.config import ExperimentConfig, PRUNE_METHODS
from grok_core.models import MLP
from grok_core.pruning import SCORERS, count_to_prune, prune, score
from grok_core.recipes import model_for
from grok_core.tasks import build_dataset

TINY = ["task.p=7", "task.pairs=all", "model.d_emb=6", "model.d_hidden=5"]


def _setup(*extra):
    config = ExperimentConfig().with_overrides([*TINY, *extra])
    model = model_for(config)
    params = {n: t.double() for n, t in model.init_member(3).items()}
    train = build_dataset(config.task).train
    return model, params, train


def _naive_loss(model, params, inputs, labels, temperature=1.0):
    logits = MLP.naive_logits({n: t[None] for n, t in params.items()}, inputs, model.vocab)[0]
    return torch.nn.functional.cross_entropy(logits / temperature, labels)


def test_every_configurable_method_has_a_scorer():
    assert set(PRUNE_METHODS) == set(SCORERS)


def test_snip_is_theta_times_the_loss_gradient():
    model, params, train = _setup()
    leaves = {n: t.clone().requires_grad_(True) for n, t in params.items()}
    grads = torch.autograd.grad(_naive_loss(model, leaves, train.inputs, train.labels),
                                list(leaves.values()))
    expected = {n: (params[n] * g).abs() for n, g in zip(leaves, grads)}
    got = score("snip", model, params, train.inputs, train.labels)
    for name in model.prunable:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-9, atol=1e-12)


def test_grasp_is_theta_times_hessian_gradient_product_at_temperature_200():
    model, params, train = _setup()
    names = list(params)
    flat = torch.cat([params[n].reshape(-1) for n in names])
    sizes = [params[n].numel() for n in names]

    def loss_of(vector):
        parts = dict(zip(names, (c.reshape(params[n].shape) for n, c in
                                 zip(names, vector.split(sizes)))))
        return _naive_loss(model, parts, train.inputs, train.labels, temperature=200.0)

    gradient = torch.autograd.functional.jacobian(loss_of, flat)
    _, hessian_gradient = torch.autograd.functional.hvp(loss_of, flat, gradient)
    expected = dict(zip(names, (flat * hessian_gradient).split(sizes)))
    got = score("grasp", model, params, train.inputs, train.labels)
    for name in model.prunable:
        torch.testing.assert_close(got[name].reshape(-1), expected[name], rtol=1e-7, atol=1e-15)


def test_synflow_round_matches_the_closed_form_of_a_nonnegative_chain():
    """With |theta| and an all-ones one-hot input at both positions, the MLP is the chain
    R = 1^T 2 colsum|W_emb| |W_in| |W_out| |W_unemb| 1 (ReLU is the identity on positives)."""
    model, params, _ = _setup()
    e, w_in, w_out, w_u = (params[n].abs() for n in ("W_emb", "W_in", "W_out", "W_unemb"))
    ones_c = torch.ones(w_u.shape[1], dtype=torch.float64)
    left_in = 2 * e.sum(0)                           # input of W_in
    right_in = w_out @ (w_u @ ones_c)                # what a unit of W_in's output adds to R
    expected_in = w_in * torch.outer(left_in, right_in)
    expected_emb = e * (2 * (w_in @ right_in))[None, :].expand_as(e)
    got = score("synflow", model, params, None, None)
    torch.testing.assert_close(got["W_in"], expected_in, rtol=1e-10, atol=0)
    torch.testing.assert_close(got["W_emb"], expected_emb, rtol=1e-10, atol=0)


def test_synflow_on_a_real_batch_is_the_authors_variant():
    model, params, train = _setup()
    ones = prune("synflow", model, params, 0.8, train.inputs, train.labels)
    batch = prune("synflow", model, params, 0.8, train.inputs, train.labels, synflow_ones=False)
    assert any(not torch.equal(ones[n], batch[n]) for n in ones)
    config = ExperimentConfig().with_overrides(["prune.method=synflow",
                                                "prune.synflow_input=batch"])
    assert config.prune.synflow_input == "batch"


def test_random_scores_are_seeded():
    model, params, _ = _setup()
    first, again = score("random", model, params, None, None, seed=1), score(
        "random", model, params, None, None, seed=1)
    other = score("random", model, params, None, None, seed=2)
    assert all(torch.equal(first[n], again[n]) for n in first)
    assert not torch.equal(first["W_in"], other["W_in"])


@pytest.mark.parametrize("method", PRUNE_METHODS)
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_every_method_removes_the_exact_count(method, scope):
    model, params, train = _setup()
    masks = prune(method, model, params, 0.6, train.inputs, train.labels, scope=scope, seed=0)
    assert set(masks) == set(model.prunable)
    if scope == "global":
        total = sum(params[n].numel() for n in model.prunable)
        assert sum(int((~m).sum()) for m in masks.values()) == count_to_prune(0.6, total)
    else:
        for name, mask in masks.items():
            assert int((~mask).sum()) == count_to_prune(0.6, params[name].numel())


def test_synflow_is_iterative_and_differs_from_its_first_round():
    model, params, train = _setup()
    iterative = prune("synflow", model, params, 0.9, train.inputs, train.labels)
    from grok_core.pruning import mask_from_scores
    one_shot = mask_from_scores(score("synflow", model, params, None, None), 0.9)
    assert any(not torch.equal(iterative[n], one_shot[n]) for n in iterative)


@pytest.mark.parametrize("method", PRUNE_METHODS)
def test_every_method_scores_the_transformer(method):
    model, params, train = _setup("model.name=transformer", "model.d_emb=8", "model.d_hidden=8")
    scores = score(method, model, params, train.inputs, train.labels, seed=0)
    assert set(scores) == set(model.prunable)
    assert all(torch.isfinite(s).all() and s.shape == params[n].shape for n, s in scores.items())
    masks = prune(method, model, params, 0.5, train.inputs, train.labels)
    total = sum(params[n].numel() for n in model.prunable)
    assert sum(int((~m).sum()) for m in masks.values()) == count_to_prune(0.5, total)


SMALL_TICKET = [*TINY, "recipe=ticket", "train.steps=60", "train.checkpoint_every=30",
                "base.train.steps=60", "base.train.checkpoint_every=30"]


@pytest.mark.parametrize("method", ["random", "snip", "grasp", "synflow", "magnitude"])
def test_pruning_at_initialisation_trains_no_dense_run(tmp_path, method):
    from grok_core.recipes import run_experiment
    from grok_core.store import ArtifactStore

    config = ExperimentConfig().with_overrides([*SMALL_TICKET, "prune.step=0",
                                                f"prune.method={method}"])
    store = ArtifactStore(str(tmp_path / "store"))
    result = run_experiment(config, [0, 1], store, rates=[0.5])
    assert result.base_members is None and not (tmp_path / "store" / "artifacts").exists()
    assert result.members["seed"].tolist() == [0, 1]
    assert result.members["final_train_acc"].notna().all()


def test_theta_0_of_a_dense_run_is_the_models_seeded_init(tmp_path):
    """So a step-0 ticket built from the seed's init is the one built from the dense run."""
    from grok_core.recipes import ensure_dense
    from grok_core.store import ArtifactStore

    config = ExperimentConfig().with_overrides([*TINY, "train.steps=60",
                                                "train.checkpoint_every=30"])
    store = ArtifactStore(str(tmp_path / "store"))
    ensure_dense(config, [4], store)
    stored = store.load_checkpoint(config.dense_key(), 4, 0)
    init = model_for(config).init_member(4)
    assert all(torch.equal(stored[n], init[n]) for n in init)


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_norm_control_starts_at_the_tickets_norm_exactly(tmp_path, norm):
    from grok_core.recipes import global_norm, norm_control_members, run_experiment, ticket_members
    from grok_core.store import ArtifactStore

    config = ExperimentConfig().with_overrides(
        [*SMALL_TICKET, "recipe=norm_control", f"norm_control.norm={norm}"])
    store = ArtifactStore(str(tmp_path / "store"))
    result = run_experiment(config, [0, 1], store, rates=[0.3, 0.7])
    assert result.recipe == "norm_control" and result.base_members is not None
    assert len(result.members) == 4 and result.members["norm_ratio"].between(0, 1).all()
    tickets = ticket_members(config, [0, 1], [0.3, 0.7], store)
    controls = norm_control_members(config, [0, 1], [0.3, 0.7], store)
    prunable = model_for(config).prunable
    for ticket, control in zip(tickets, controls):
        assert control.mask is None and control.labels["pruning_rate"] == ticket.labels["pruning_rate"]
        ticket_norm = global_norm({n: ticket.init[n] * ticket.mask[n] for n in prunable}, norm)
        control_norm = global_norm({n: control.init[n] for n in prunable}, norm)
        assert control_norm == pytest.approx(ticket_norm, rel=1e-6)


def test_dense_structure_over_training_from_stored_checkpoints(tmp_path):
    from analysis.structure import dense_structure
    from grok_core.metrics import fourier_entropy, jaccard_distance
    from grok_core.pruning import magnitude_mask
    from grok_core.recipes import ensure_dense
    from grok_core.store import ArtifactStore

    config = ExperimentConfig().with_overrides([*TINY, "train.steps=90",
                                                "train.checkpoint_every=30", "optim.lr=0.01"])
    store = ArtifactStore(str(tmp_path / "store"))
    ensure_dense(config, [0], store)
    table = dense_structure(store, config, seed=0, pruning_rate=0.6)
    assert table["step"].tolist() == [0, 30, 60, 90]
    assert pd.isna(table["jaccard"].iloc[0]) and (table["jaccard"].iloc[1:] > 0).all()
    key = config.dense_key()
    masks = [magnitude_mask(store.load_checkpoint(key, 0, s), 0.6) for s in (30, 60)]
    assert table["jaccard"].iloc[2] == pytest.approx(jaccard_distance(masks[0], masks[1]))
    assert table["jaccard.W_in"].iloc[2] == pytest.approx(
        jaccard_distance(masks[0]["W_in"], masks[1]["W_in"]))
    theta = store.load_checkpoint(key, 0, 90)
    weights = (theta["W_emb"] @ theta["W_in"]).T
    assert table["fourier_entropy"].iloc[3] == pytest.approx(fourier_entropy(weights))
    assert (table["l2"] > 0).all()
