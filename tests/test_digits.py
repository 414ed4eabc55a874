"""The digits task (issue 10, first part): scikit-learn's 8x8 images, the feature-vector MLP, the
MSE loss, pruning methods on it, a cohort member equal to its solo run, and the study end to end."""
import pytest
import torch

import analysis
from grok_core.config import ConfigError, ExperimentConfig, TaskConfig
from grok_core.models import VectorMLP, mse_and_accuracy
from grok_core.pruning import count_to_prune, prune
from grok_core.recipes import model_for
from grok_core.tasks import build_dataset
from grok_core.training import MemberSpec, train_cohort

SMALL = ["task.name=digits", "model.d_hidden=16", "model.init_scale=8", "train.loss=mse",
         "optim.weight_decay=0.01", "train.steps=40", "train.eval_every=10"]


def test_digits_splits_are_sized_scaled_and_seeded():
    data = build_dataset(TaskConfig(name="digits"))
    assert data.kind == "vectors" and data.vocab == 64 and data.classes == 10
    assert data.train.inputs.shape == (1000, 64) and data.test.inputs.shape == (797, 64)
    assert 0.0 <= float(data.train.inputs.min()) and float(data.train.inputs.max()) == 1.0
    assert set(data.train.labels.tolist()) == set(range(10))
    again, other = build_dataset(TaskConfig(name="digits")), build_dataset(
        TaskConfig(name="digits", split_seed=1))
    assert torch.equal(again.train.inputs, data.train.inputs)
    assert not torch.equal(other.train.inputs, data.train.inputs)
    assert len(build_dataset(TaskConfig(name="digits", n_train=300)).train) == 300


def test_mse_is_torchs_mean_squared_error_against_one_hot_targets():
    logits = torch.randn(2, 5, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 9, 9, 1])
    loss, accuracy = mse_and_accuracy(logits, labels)
    target = torch.nn.functional.one_hot(labels, 10).float()
    for k in range(2):
        assert float(loss[k]) == pytest.approx(
            float(torch.nn.functional.mse_loss(logits[k], target)), rel=1e-6)
        assert float(accuracy[k]) == float((logits[k].argmax(-1) == labels).float().mean())


def test_a_digits_member_of_a_cohort_equals_its_solo_run():
    config = ExperimentConfig().with_overrides(SMALL)
    model = model_for(config)
    assert isinstance(model, VectorMLP) and model.prunable == ("W1", "W2", "W3")
    mask = {n: torch.rand(model.specs[n].shape, generator=torch.Generator().manual_seed(2)) > 0.4
            for n in model.prunable}
    specs = [MemberSpec(seed=0), MemberSpec(seed=1, mask=mask)]
    together, alone = train_cohort(config, specs), train_cohort(config, specs[1:])
    for name in model.specs:
        torch.testing.assert_close(together.final_params[name][1], alone.final_params[name][0],
                                   rtol=1e-6, atol=1e-7)
    assert together.curves["train_loss"].iloc[-1] < together.curves["train_loss"].iloc[0]


@pytest.mark.parametrize("method", ["magnitude", "random", "snip", "grasp", "synflow"])
def test_every_pruning_method_masks_the_digits_mlp_exactly(method):
    config = ExperimentConfig().with_overrides(SMALL)
    model, train = model_for(config), build_dataset(config.task).train
    params = model.init_member(0)
    masks = prune(method, model, params, 0.6, train.inputs[:200], train.labels[:200])
    total = sum(m.numel() for m in masks.values())
    assert set(masks) == {"W1", "W2", "W3"}
    assert sum(int((~m).sum()) for m in masks.values()) == count_to_prune(0.6, total)


@pytest.mark.parametrize("overrides, message", [
    (["task.name=digits", "task.p=13"], "task.p"),
    (["task.name=digits", "model.name=transformer"], "model.name"),
    (["task.name=digits", "model.d_emb=32"], "model.d_emb"),
    (["task.name=digits", "train.fourier_entropy=shannon"], "train.fourier_entropy"),
    (["task.n_train=100"], "task.n_train"),
])
def test_digits_settings_that_do_not_apply_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        ExperimentConfig().with_overrides(overrides)


def test_digits_study_end_to_end(tmp_path, grok):
    # the quick study at a tinier budget and width (its own size trains 6000 steps at full width)
    tiny = [f"{key}.{name}" for key in ("train", "base.train")
            for name in ("steps=1500", "checkpoint_every=500")]
    result = grok("sweep", "digits", "--quick", "--storage", tmp_path / "s",
                  *[arg for setting in [*tiny, "model.d_hidden=32"] for arg in ("--set", setting)])
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = analysis.load(str(tmp_path / "s" / "digits-quick"))
    assert len(loaded.members) == 2 and len(loaded.base) == 2
    for _, curve in loaded.base_curves.groupby("seed"):  # the init-scale-8 loss collapses
        assert curve["train_loss"].iloc[-1] < 0.01 * curve["train_loss"].iloc[0]
    bad = grok("train", "dense", "--set", "task.name=digits", "--set", "task.p=13")
    assert bad.returncode == 2 and "task.p" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
