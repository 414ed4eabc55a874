"""The cohort LSTM classifier (App. J): equal to torch.nn's Embedding + LSTM + Linear, a member
equal to its solo run, masks, training equal to torch.optim.AdamW, float64, SynFlow's all-ones
input, and GraSP's double backward through the fused kernel."""
import pytest
import torch

from grok_core.config import ModelConfig
from grok_core.models import LSTMClassifier, member_slice, stack_members
from grok_core.optim import CohortAdamW
from grok_core.pruning import count_to_prune, grasp_scorer, prune, synflow_round

VOCAB, CLASSES, LENGTH, BATCH = 20, 3, 12, 6
# ModelConfig checks model.name; the model class does not read it
CONFIG = ModelConfig(d_emb=8, d_hidden=8)


def make_model() -> LSTMClassifier:
    return LSTMClassifier(CONFIG, VOCAB, CLASSES)


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids with some front padding (token 0), and labels."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, VOCAB, (BATCH, LENGTH), generator=generator)
    inputs[:2, :5] = 0
    return inputs, torch.randint(0, CLASSES, (BATCH,), generator=generator)


class TorchNet(torch.nn.Module):
    """The same network written with torch.nn modules, weights copied from one member."""

    def __init__(self, member: dict[str, torch.Tensor]) -> None:
        super().__init__()
        d, h = member["W_ih0"].shape[1], member["W_hh0"].shape[1]
        self.emb = torch.nn.Embedding(VOCAB, d)
        self.lstm = torch.nn.LSTM(d, h, num_layers=2, batch_first=True)
        self.out = torch.nn.Linear(h, CLASSES)
        with torch.no_grad():
            self.emb.weight.copy_(member["embedding"])
            for layer in range(2):
                for ours, theirs in (("W_ih", "weight_ih"), ("W_hh", "weight_hh"),
                                     ("b_ih", "bias_ih"), ("b_hh", "bias_hh")):
                    getattr(self.lstm, f"{theirs}_l{layer}").copy_(member[f"{ours}{layer}"])
            self.out.weight.copy_(member["W_out"].T)
            self.out.bias.copy_(member["b_out"])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(self.emb(inputs))[0][:, -1])


def random_cohort(model: LSTMClassifier, seeds) -> dict[str, torch.Tensor]:
    """init_cohort with nonzero biases too, so the tests see them."""
    params = model.init_cohort(seeds)
    generator = torch.Generator().manual_seed(99)
    for name, spec in model.specs.items():
        if spec.fan_in is None:
            params[name] = 0.1 * torch.randn(params[name].shape, generator=generator)
    return params


def test_specs_follow_nn_lstm_layout():
    model = make_model()
    assert model.specs["embedding"].shape == (VOCAB, 8)
    assert model.specs["W_ih0"].shape == (32, 8) and model.specs["W_hh1"].shape == (32, 8)
    assert model.specs["W_out"].shape == (8, CLASSES)
    assert model.prunable == ("embedding", "W_ih0", "W_hh0", "W_ih1", "W_hh1", "W_out")
    params = model.init_member(0)
    assert not params["b_ih0"].any() and not params["b_out"].any()
    defaults = LSTMClassifier(ModelConfig(), 1002, 2)
    assert defaults.specs["W_ih0"].shape == (512, 64)
    assert defaults.specs["W_hh1"].shape == (512, 128)


def test_logits_equal_torch_nn_embedding_lstm_linear():
    model, (inputs, _) = make_model(), make_batch()
    params = random_cohort(model, [0, 1])
    logits = model.logits(params, inputs)
    assert logits.shape == (2, BATCH, CLASSES)
    for k in range(2):
        expected = TorchNet(member_slice(params, k))(inputs)
        torch.testing.assert_close(logits[k], expected, rtol=1e-6, atol=1e-6)


def test_the_explicit_cell_loop_equals_the_fused_kernel():
    model, (inputs, _) = make_model(), make_batch()
    params = random_cohort(model, [0, 1, 2])
    torch.testing.assert_close(model.logits_differentiable_twice(params, inputs),
                               model.logits(params, inputs), rtol=1e-5, atol=1e-6)


def test_a_cohort_member_equals_its_solo_run_in_logits_and_gradients():
    model, (inputs, labels) = make_model(), make_batch()
    params = random_cohort(model, [0, 1, 2])
    solo = stack_members([member_slice(params, 1)])
    assert torch.equal(model.logits(params, inputs)[1], model.logits(solo, inputs)[0])
    loss, acc, grads = model.loss_and_grads(params, None, inputs, labels)
    solo_loss, solo_acc, solo_grads = model.loss_and_grads(solo, None, inputs, labels)
    assert float(loss[1]) == float(solo_loss[0]) and float(acc[1]) == float(solo_acc[0])
    for name in model.specs:
        assert grads[name].shape == params[name].shape
        torch.testing.assert_close(grads[name][1], solo_grads[name][0], rtol=1e-6, atol=1e-9)
        assert grads[name][1].abs().sum() > 0, name  # every tensor, the embedding too, learns


def test_masked_weights_get_exactly_zero_gradient():
    model, (inputs, labels) = make_model(), make_batch()
    params = random_cohort(model, [0, 1])
    generator = torch.Generator().manual_seed(3)
    masks = {n: torch.rand(params[n].shape, generator=generator) > 0.5 for n in model.prunable}
    _, _, grads = model.loss_and_grads(params, masks, inputs, labels)
    for name, mask in masks.items():
        assert not grads[name][~mask].any(), name
        assert grads[name][mask].abs().sum() > 0, name


def test_cohort_training_equals_torch_nn_with_adamw():
    model, (inputs, labels) = make_model(), make_batch()
    params = model.init_cohort([0, 1])
    nets = [TorchNet(member_slice(params, k)) for k in range(2)]
    lr, decay = [0.01, 0.003], [0.1, 1.0]
    optimizer = CohortAdamW(params, lr, decay, betas=(0.9, 0.98), eps=1e-8)
    plain = [torch.optim.AdamW(net.parameters(), lr=lr[k], betas=(0.9, 0.98), eps=1e-8,
                               weight_decay=decay[k]) for k, net in enumerate(nets)]
    for _ in range(30):
        _, _, grads = model.loss_and_grads(params, None, inputs, labels)
        optimizer.step(grads)
        for net, opt in zip(nets, plain):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(inputs), labels).backward()
            opt.step()
    for k, net in enumerate(nets):
        expected = TorchNet(member_slice(params, k))
        for mine, theirs in zip(expected.parameters(), net.parameters()):
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    loss, _, _ = model.loss_and_grads(params, None, inputs, labels, with_grads=False)
    assert (loss < 1.0).all()  # it learnt the batch (chance is log 3 = 1.1)


def test_float64_params_run_in_float64():
    model, (inputs, labels) = make_model(), make_batch()
    params = {n: t.double() for n, t in random_cohort(model, [0]).items()}
    logits = model.logits(params, inputs)
    assert logits.dtype == torch.float64
    torch.testing.assert_close(logits, model.logits_differentiable_twice(params, inputs),
                               rtol=1e-12, atol=1e-12)
    _, _, grads = model.loss_and_grads(params, None, inputs, labels, torch.float64)
    assert all(g.dtype == torch.float64 for g in grads.values())


def test_ones_input_is_one_summed_token_and_synflow_scores_are_finite():
    model = make_model()
    member = model.init_member(0)
    forward, batch = model.ones_input(member)
    assert batch.shape == (1, 1) and forward["embedding"].shape == (1, 8)
    output = model.logits(stack_members([forward]), batch)
    assert output.shape == (1, 1, CLASSES) and torch.isfinite(output.sum())
    scores = synflow_round(model, member)
    assert set(scores) == set(model.prunable)
    assert all(torch.isfinite(s).all() and (s >= 0).all() for s in scores.values())
    assert scores["embedding"].abs().sum() > 0


class TwiceDifferentiable(LSTMClassifier):
    """The same model whose ``logits`` is the explicit cell loop (a reference for GraSP)."""

    def logits(self, params, inputs):
        return self.logits_differentiable_twice(params, inputs)


def test_grasp_double_backward_goes_through_the_fused_kernel_on_cpu():
    model, (inputs, labels) = make_model(), make_batch()
    reference = TwiceDifferentiable(CONFIG, VOCAB, CLASSES)
    member = member_slice(random_cohort(model, [0]), 0)
    fused, explicit = grasp_scorer(model, member, inputs, labels), grasp_scorer(
        reference, member, inputs, labels)
    for name in model.prunable:
        assert fused[name].abs().sum() > 0, name
        torch.testing.assert_close(fused[name], explicit[name], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("method", ["magnitude", "random", "snip", "grasp", "synflow"])
def test_every_pruning_method_masks_the_lstm_exactly(method):
    model, (inputs, labels) = make_model(), make_batch()
    masks = prune(method, model, model.init_member(0), 0.6, inputs, labels)
    assert set(masks) == set(model.prunable)
    total = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == count_to_prune(0.6, total)
