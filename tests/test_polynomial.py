"""Polynomial regression (issue 10): the data, the authors' MLP, the MSE loss with R^2 as the
"accuracy" that defines t_mem / t_gen, and a cohort member equal to its solo run."""
import numpy as np
import pytest
import torch

from grok_core.config import ConfigError, ExperimentConfig, TaskConfig
from grok_core.models import VectorMLP, regression_mse_and_r2
from grok_core.recipes import model_for
from grok_core.tasks import build_dataset
from grok_core.training import MemberSpec, train_cohort

SMALL = ["task.name=polynomial", "task.dim=8", "task.n_test=200", "model.d_hidden=16",
         "optim.lr=0.01", "train.steps=150", "train.eval_every=5"]


def test_polynomial_data_are_the_square_of_a_fixed_projection():
    task = TaskConfig(name="polynomial")
    data = build_dataset(task)
    assert data.kind == "vectors" and (data.vocab, data.classes) == (40, 1)
    assert data.train.inputs.shape == (100, 40) and data.test.inputs.shape == (1000, 40)
    assert data.train.labels.dtype == torch.float32
    beta = np.random.default_rng([0, 0]).standard_normal(40)
    x = data.train.inputs.double().numpy()
    np.testing.assert_allclose(data.train.labels.numpy(), (x @ beta) ** 2 / 2, rtol=1e-4,
                               atol=1e-6)  # x was rounded to float32
    # x ~ N(0, I / 40): squared norms near 1
    assert 0.8 < float((data.test.inputs ** 2).sum(1).mean()) < 1.2
    other = build_dataset(TaskConfig(name="polynomial", split_seed=1))
    assert not torch.equal(other.train.inputs, data.train.inputs)
    fewer = build_dataset(TaskConfig(name="polynomial", n_train=50))
    assert torch.equal(fewer.test.labels, data.test.labels)  # the test points keep their stream


def test_the_authors_mlp_has_no_biases_and_one_output():
    model = model_for(ExperimentConfig().with_overrides(["task.name=polynomial"]))
    assert isinstance(model, VectorMLP)
    assert {n: s.shape for n, s in model.specs.items()} == {
        "W1": (40, 40), "W2": (40, 48), "W3": (48, 500), "W4": (500, 1)}
    assert model.prunable == ("W1", "W2", "W3", "W4")


def test_r2_is_one_for_a_perfect_fit_and_zero_for_the_mean():
    targets = torch.tensor([0.5, 1.5, 3.0, 0.0])
    perfect = targets.view(1, -1, 1)
    mean = torch.full((1, 4, 1), float(targets.mean()))
    both = torch.cat([perfect, mean])
    loss, r2 = regression_mse_and_r2(both, targets)
    assert float(loss[0]) == 0.0 and float(r2[0]) == pytest.approx(1.0)
    assert float(loss[1]) == pytest.approx(float(targets.var(unbiased=False)))
    assert float(r2[1]) == pytest.approx(0.0, abs=1e-6)


def test_t_mem_is_when_train_mse_falls_below_the_threshold_share_of_the_variance():
    config = ExperimentConfig().with_overrides(SMALL)
    assert config.loss == "mse"
    together = train_cohort(config, [MemberSpec(seed=0), MemberSpec(seed=1)])
    alone = train_cohort(config, [MemberSpec(seed=1)])
    for name in together.final_params:  # batched matmuls round differently by the ulp;
        # Adam's normalised steps carry that over 150 steps to ~1e-7
        torch.testing.assert_close(together.final_params[name][1], alone.final_params[name][0],
                                   rtol=1e-4, atol=1e-6)
    curves = together.curves[together.curves["member"] == 0]
    variance = float(build_dataset(config.task).train.labels.var(unbiased=False))
    below = curves.loc[curves["train_loss"] <= 0.05 * variance * (1 + 1e-6), "step"]
    t_mem = together.summaries[0]["t_mem"]
    assert t_mem is not None and t_mem <= int(below.iloc[0])  # t_mem is exact to the step
    assert (curves["train_acc"] - (1 - curves["train_loss"] / variance)).abs().max() < 1e-4


@pytest.mark.parametrize("overrides, message", [
    (["task.name=polynomial", "train.loss=cross_entropy"], "regression"),
    (["task.name=polynomial", "task.parity_k=2"], "task.parity_k"),
    (["task.name=polynomial", "task.n_train=0"], "task.n_train"),
    (["task.name=polynomial", "model.d_emb=8"], "model.d_emb"),
])
def test_polynomial_settings_that_do_not_apply_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig().with_overrides(overrides)
