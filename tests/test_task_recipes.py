"""Everything that works on modular arithmetic works on the other tasks (issue 10): every recipe
and pruning method, through the same store, on polynomial regression, sparse parity and text,
at tiny sizes."""
import pytest

from grok_core.config import ExperimentConfig
from grok_core.pruning import count_to_prune, prune
from grok_core.recipes import model_for, run_experiment
from grok_core.store import ArtifactStore
from grok_core.tasks import build_dataset

BUDGET = ["train.steps=60", "train.eval_every=10", "train.checkpoint_every=30",
          "base.train.steps=60", "base.train.eval_every=10", "base.train.checkpoint_every=30"]
TASKS = {
    "polynomial": ["task.name=polynomial", "task.dim=8", "task.n_test=100", "model.d_hidden=16",
                   "optim.lr=0.01"],
    "parity": ["task.name=parity", "task.dim=10", "task.n_train=100", "task.n_test=100",
               "model.d_hidden=32", "optim.name=sgd", "optim.lr=0.1", "optim.weight_decay=0.01",
               "train.batch_size=16", "train.loss=hinge"],
    "text": ["task.name=text", "task.n_train=40", "task.n_test=20",
             "task.seq_len=12", "task.vocab_size=30", "model.d_emb=8", "model.d_hidden=8",
             "train.batch_size=16", "optim.lr=0.01"],
}


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("method", ["magnitude", "random", "snip", "grasp", "synflow"])
def test_every_pruning_method_removes_exactly_k_of_each_tasks_weights(task, method):
    config = ExperimentConfig().with_overrides(TASKS[task])
    model, train = model_for(config), build_dataset(config.task).train
    masks = prune(method, model, model.init_member(0), 0.6, train.inputs[:32], train.labels[:32])
    total = sum(m.numel() for m in masks.values())
    assert set(masks) == set(model.prunable)
    assert sum(int((~m).sum()) for m in masks.values()) == count_to_prune(0.6, total)


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("recipe", [
    ["recipe=ticket"], ["recipe=ticket", "prune.step=30"],
    ["recipe=ticket", "prune.step=0", "prune.method=snip"],
    ["recipe=norm_control"], ["recipe=edge_popup", "edge_popup.start_step=30"]])
def test_every_recipe_runs_on_each_task_from_the_dense_runs_in_the_store(tmp_path, task, recipe):
    store = ArtifactStore(str(tmp_path / "store"))
    config = ExperimentConfig().with_overrides([*TASKS[task], *BUDGET, *recipe])
    result = run_experiment(config, [0, 1], store, rates=[0.5])
    members, curves = result.members, result.curves
    assert len(members) == 2 and (members["recipe"] == config.recipe).all()
    assert (members["steps_run"] == 60).all() and curves["step"].max() == 60
    assert curves[["train_loss", "test_loss", "test_acc"]].notna().all().all()
    # training lowered the loss (the weights or, for edge-popup, the mask learned)
    first, last = (curves.groupby(["seed"])["train_loss"].agg(side) for side in ("first", "last"))
    assert last.mean() < first.mean(), (first, last)
    if config.needs_dense_base:
        assert store.has_dense(config.dense_key(), 0) and store.has_dense(config.dense_key(), 1)


@pytest.mark.parametrize("members", [1, 3])
@pytest.mark.parametrize("settings", [
    TASKS["polynomial"], TASKS["parity"], [*TASKS["parity"], "train.loss=cross_entropy"],
    ["task.name=digits", "model.d_hidden=16", "train.loss=mse"],
    [*TASKS["polynomial"], "model.activation=quadratic", "model.hidden_layers=1"],
    [*TASKS["polynomial"], "model.activation=quadratic"],
    ["task.name=digits", "model.d_hidden=16", "model.hidden_layers=3",
     "model.activation=quadratic"]])
def test_the_vector_mlps_hand_written_backward_equals_autograd(settings, members):
    import torch

    from grok_core.models import CohortModel
    config = ExperimentConfig().with_overrides(settings)
    model, train = model_for(config), build_dataset(config.task).train
    params = {n: t.double() for n, t in model.init_cohort(range(members)).items()}
    generator = torch.Generator().manual_seed(3)
    masks = {n: (torch.rand(params[n].shape, generator=generator) > 0.3).double()
             for n in model.prunable}
    inputs, labels = train.inputs[:40], train.labels[:40]
    if labels.is_floating_point():
        labels = labels.double()
    ours = model.loss_and_grads(params, masks, inputs, labels, torch.float64)
    generic = CohortModel.loss_and_grads(model, params, masks, inputs, labels, torch.float64)
    torch.testing.assert_close(ours[0], generic[0])
    assert torch.equal(ours[1], generic[1])
    assert set(ours[2]) == set(generic[2])
    for name in generic[2]:
        torch.testing.assert_close(ours[2][name], generic[2][name], rtol=1e-9, atol=1e-12)


def test_activation_and_hidden_layers_shape_the_vector_mlp():
    """model.hidden_layers=1 with the task's widest layer (polynomial: 40-500-1, Kumar et al.'s
    two-layer network), phi(h) = h + h^2 / 2 under model.activation=quadratic; both only for
    a vector task's MLP (one line otherwise)."""
    import torch

    from grok_core.config import ConfigError
    config = ExperimentConfig().with_overrides(
        ["task.name=polynomial", "model.activation=quadratic", "model.hidden_layers=1"])
    model = model_for(config)
    assert {n: s.shape for n, s in model.specs.items()} == {"W1": (40, 500), "W2": (500, 1)}
    params = model.init_cohort([0])
    x = torch.randn(5, 40)
    pre = x @ params["W1"][0]
    torch.testing.assert_close(model.logits(params, x)[0],
                               (pre + pre * pre / 2) @ params["W2"][0])
    for overrides in (["model.activation=quadratic"], ["model.hidden_layers=1"],
                      ["task.name=text", "model.activation=quadratic"],
                      ["model.name=transformer", "model.hidden_layers=2"]):
        with pytest.raises(ConfigError, match="model.activation / model.hidden_layers"):
            ExperimentConfig().with_overrides(overrides)
