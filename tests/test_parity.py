"""Sparse parity (issue 10): the data, minibatch training (batches fixed by the split seed, a
resumed run equal to an uninterrupted one), SGD, the hinge loss, and t_mem measured on the whole
training split when a step sees only a batch."""
import numpy as np
import pandas as pd
import pytest
import torch

from grok_core.config import ConfigError, ExperimentConfig, TaskConfig
from grok_core.models import hinge_and_accuracy
from grok_core.optim import CohortSGD
from grok_core.recipes import model_for
from grok_core.tasks import build_dataset, parity_bits
from grok_core.training import Callbacks, MemberSpec, TrainingState, minibatch, train_cohort

SMALL = ["task.name=parity", "task.dim=12", "task.n_train=200", "task.n_test=100",
         "model.d_hidden=32", "optim.name=sgd", "optim.lr=0.1", "optim.weight_decay=0.01",
         "train.batch_size=32", "train.loss=hinge", "train.steps=60", "train.eval_every=10"]


def test_parity_data_labels_are_the_product_of_the_fixed_bits():
    task = TaskConfig(name="parity")
    data = build_dataset(task)
    assert data.kind == "vectors" and (data.vocab, data.classes) == (40, 2)
    assert len(data.train) == 1000 and len(data.test) == 1000
    x, y = data.train.inputs.numpy(), data.train.labels.numpy()
    assert set(np.unique(x)) == {-1.0, 1.0}
    bits = parity_bits(task)
    assert len(bits) == 3 and len(set(bits)) == 3
    assert np.array_equal(y, (np.prod(x[:, bits], axis=1) > 0).astype(np.int64))
    assert 0.4 < y.mean() < 0.6
    again = build_dataset(task)
    assert torch.equal(again.train.inputs, data.train.inputs)
    other = build_dataset(TaskConfig(name="parity", split_seed=1))
    assert not torch.equal(other.train.inputs, data.train.inputs)
    # each part has its own stream: more test points leave the training points as they were
    bigger = build_dataset(TaskConfig(name="parity", n_test=50))
    assert torch.equal(bigger.train.inputs, data.train.inputs)


def test_minibatches_partition_each_epoch_and_need_no_history():
    data = build_dataset(TaskConfig(name="parity", n_train=100))
    per_epoch = 100 // 32
    seen = torch.cat([minibatch(data.train, 32, step, seed=0).inputs for step in range(per_epoch)])
    assert len(seen) == 96 and len({tuple(r) for r in seen.tolist()}) == 96  # no repeats
    first = minibatch(data.train, 32, 7, seed=0)
    assert torch.equal(first.inputs, minibatch(data.train, 32, 7, seed=0).inputs)
    assert not torch.equal(first.inputs, minibatch(data.train, 32, 7, seed=1).inputs)
    assert minibatch(data.train, None, 7, seed=0) is data.train


def test_cohort_sgd_matches_torch_sgd_with_momentum_and_weight_decay():
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(2, 5, 3, generator=generator)
    grads = [torch.randn(2, 5, 3, generator=generator) for _ in range(4)]
    ours = CohortSGD({"w": start.clone()}, lr=[0.1, 0.05], weight_decay=[0.01, 0.0],
                     momentum=0.9)
    for grad in grads:
        ours.step({"w": grad})
    for k, (lr, wd) in enumerate([(0.1, 0.01), (0.05, 0.0)]):
        weight = start[k].clone().requires_grad_(True)
        reference = torch.optim.SGD([weight], lr=lr, momentum=0.9, weight_decay=wd)
        for grad in grads:
            weight.grad = grad[k].clone()
            reference.step()
        torch.testing.assert_close(ours.params["w"][k], weight.detach(), rtol=1e-6, atol=1e-7)


def test_hinge_is_the_binary_hinge_on_the_logit_difference_for_two_classes():
    logits = torch.randn(2, 7, 2, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0])
    loss, accuracy = hinge_and_accuracy(logits, labels)
    sign = labels.float() * 2 - 1
    margin = logits[..., 1] - logits[..., 0]
    torch.testing.assert_close(loss, torch.relu(1 - sign * margin).mean(1))
    assert torch.equal(accuracy, ((margin > 0).long() == labels).float().mean(1))


class _StateKeeper(Callbacks):
    def __init__(self):
        self.states = {}

    def on_state(self, state):
        self.states[state.step] = state.to_bytes()


def test_a_minibatch_sgd_run_resumed_equals_the_uninterrupted_run_and_members_their_solo_runs():
    config = ExperimentConfig().with_overrides([*SMALL, "optim.momentum=0.9"])
    members = [MemberSpec(seed=0), MemberSpec(seed=1, lr=0.05)]
    keeper = _StateKeeper()
    whole = train_cohort(config, members, callbacks=keeper, state_every=25)
    resumed = train_cohort(config, members, resume=TrainingState.from_bytes(keeper.states[25]))
    pd.testing.assert_frame_equal(resumed.curves, whole.curves, check_exact=True)
    assert resumed.summaries == whole.summaries
    alone = train_cohort(config, members[1:])
    for name in whole.final_params:
        torch.testing.assert_close(whole.final_params[name][1], alone.final_params[name][0],
                                   rtol=1e-6, atol=1e-7)


def test_with_minibatches_t_mem_comes_from_the_whole_training_split_at_evaluations():
    config = ExperimentConfig().with_overrides([*SMALL, "train.steps=400", "optim.lr=0.2"])
    result = train_cohort(config, [MemberSpec(seed=0)])
    curves, summary = result.curves, result.summaries[0]
    model, data = model_for(config), build_dataset(config.task)
    final = {n: t[:1] for n, t in result.final_params.items()}
    loss, accuracy = model.loss_and_accuracy(model.logits(final, data.train.inputs),
                                             data.train.labels)
    assert float(curves["train_acc"].iloc[-1]) == pytest.approx(float(accuracy[0]), abs=1e-6)
    reached = curves.loc[curves["train_acc"] >= 0.95, "step"]
    assert summary["t_mem"] == (int(reached.iloc[0]) if len(reached) else None)
    assert summary["t_mem"] is not None and summary["t_mem"] % 10 == 0


@pytest.mark.parametrize("overrides, message", [
    (["task.name=parity", "task.parity_k=41"], "task.parity_k"),
    (["task.name=parity", "task.p=13"], "task.p: applies to task.name=modular only"),
    (["task.dim=20"], "task.dim: applies to task.name=polynomial or parity only"),
    (["task.name=parity", "optim.momentum=0.9"], "optim.momentum: applies to optim.name=sgd"),
    (["task.name=parity", "optim.name=sgd", "optim.beta2=0.99"], "optim.beta2"),
    (["task.name=parity", "train.batch_size=0"], "train.batch_size"),
    (["task.name=parity", "model.name=transformer"], "model.name"),
])
def test_parity_settings_that_do_not_apply_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig().with_overrides(overrides)
