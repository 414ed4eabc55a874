"""The compiled kernels (grok_core.native): they build, agree with the PyTorch path and with
float64, keep a member's numbers independent of its cohort, and fall back with a warning."""
import shutil

import pytest
import torch

from grok_core import native
from grok_core.config import ExperimentConfig, ModelConfig
from grok_core.models import transposed_cross_entropy
from grok_core.models import MLP, build_model
from grok_core.models import mlp as mlp_module
from grok_core.models.transformer import Transformer
from grok_core.pruning import magnitude_mask
from grok_core.training import MemberSpec, cohort_loss_and_grads, train_cohort

needs_compiler = pytest.mark.skipif(native._compiler() is None, reason="no C compiler here")


@needs_compiler
def test_the_kernels_build_and_load():
    assert native.available()
    assert native.library_path(native._compiler()).exists()
    assert native.usable(torch.zeros(2)) and not native.usable(torch.zeros(2, dtype=torch.float64))


@needs_compiler
@pytest.mark.parametrize("loss", ["mse", "hinge"])
def test_the_transformer_trains_on_a_loss_that_takes_the_autograd_path(loss):
    """Losses other than cross-entropy differentiate ``logits`` by autograd: the kernels, which
    record no graph, must leave such tensors to PyTorch (they once took them, and every such
    run failed at its first step)."""
    assert not native.usable(torch.zeros(2, requires_grad=True))
    config = ExperimentConfig().with_overrides(
        ["model.name=transformer", "task.p=7", "train.steps=20", f"train.loss={loss}"])
    result = train_cohort(config, [MemberSpec(seed=0)])
    assert result.curves["train_loss"].notna().all()


def _tokens(vocab, n, seed):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randint(0, vocab, (n, 2), generator=generator),
            torch.randint(0, vocab, (n,), generator=generator))


@needs_compiler
@pytest.mark.parametrize("pos_embed, biases", [(False, False), (True, True)])
def test_the_transformer_by_the_kernels_agrees_with_float64(pos_embed, biases, monkeypatch):
    """float32 by the kernels and float32 by PyTorch both agree with float64 (the exact
    definition, tested against autograd in test_engine) to float32 precision."""
    model = Transformer(ModelConfig(name="transformer", d_emb=24, d_hidden=20,
                                    pos_embed=pos_embed, biases=biases), 13, 13)
    params = model.init_cohort([0, 1, 2])
    generator = torch.Generator().manual_seed(3)
    params = {n: t + 0.3 * torch.randn(t.shape, generator=generator) for n, t in params.items()}
    inputs, labels = _tokens(13, 90, 4)
    _both_paths_agree_with_float64(model, params, None, inputs, labels, monkeypatch)


def _both_paths_agree_with_float64(model, params, masks, inputs, labels, monkeypatch):
    """One step of ``model`` in float32 by the kernels and by PyTorch, each within float32
    precision of the float64 step, and not the same bits (so both paths ran)."""
    reference = model.loss_and_grads(
        {n: t.double() for n, t in params.items()},
        None if masks is None else {n: m.double() for n, m in masks.items()}, inputs, labels,
        torch.float64)
    by_kernels = model.loss_and_grads(params, masks, inputs, labels, torch.float64)
    monkeypatch.setattr(native, "available", lambda: False)
    by_torch = model.loss_and_grads(params, masks, inputs, labels, torch.float64)
    for ours in (by_kernels, by_torch):
        assert torch.allclose(ours[0].double(), reference[0].double(), rtol=1e-6)
        assert torch.equal(ours[1], reference[1].float())
        for name, grad in reference[2].items():
            scale = grad.abs().max()
            assert ((ours[2][name].double() - grad).abs().max() / scale) < 2e-5, name
    first = model.embedding
    assert not torch.equal(by_kernels[2][first], by_torch[2][first])


@needs_compiler
def test_the_kernels_cross_entropy_keeps_a_confident_prediction():
    """Rows from confident (loss ~1e-30, where float32 would round the loss to 0) to spread
    out, logits across the exponential's range: loss, accuracy and gradient as float64 gives
    them, to float32's relative precision in every entry."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 300, 67, generator=generator) * 30
    labels = torch.randint(0, 67, (300,), generator=generator)
    logits[:, :50] = -40.0
    logits[:, torch.arange(50), labels[:50]] = 40.0  # p_y = 1 - 66 e^-80
    loss, accuracy, d_logits = native.cross_entropy_rows(logits, labels, with_grads=True)
    exact = torch.log_softmax(logits.double(), -1)
    exact_loss = -exact.gather(-1, labels.view(1, -1, 1).expand(2, -1, 1)).mean((1, 2))
    exact_grad = (exact.exp() - torch.nn.functional.one_hot(labels, 67)) / 300
    assert torch.allclose(loss.double(), exact_loss, rtol=1e-6, atol=0)
    relative = (d_logits.double() - exact_grad).abs() / exact_grad.abs().clamp_min(1e-36)
    assert relative[exact_grad.abs() > 1e-36].max() < 1e-5
    _, ref_accuracy, _ = transposed_cross_entropy(logits.transpose(1, 2), labels,
                                                  torch.float64, False)
    assert torch.equal(accuracy, ref_accuracy)
    no_grad_loss, _, none = native.cross_entropy_rows(logits, labels, with_grads=False)
    assert none is None and torch.equal(no_grad_loss, loss)


@needs_compiler
@pytest.mark.parametrize("model_name", ["mlp", "transformer"])
def test_a_step_that_skips_its_loss_has_the_accuracy_and_gradients_of_one_that_takes_it(
        model_name):
    """A training step's loss is read only at evaluations, so the kernels may skip its
    logarithms: the loss is then NaN (never a stale or partial value), and the accuracy and
    every gradient are bitwise those of the step that computes it."""
    model = build_model(ModelConfig(name=model_name), 13, 13, "tokens")
    params = model.init_cohort([0, 1])
    inputs, labels = _tokens(13, 90, 5)
    loss, accuracy, grads = model.loss_and_grads(params, None, inputs, labels, torch.float64)
    skipped, same_accuracy, same_grads = model.loss_and_grads(
        params, None, inputs, labels, torch.float64, with_loss=False)
    assert loss.isfinite().all() and skipped.isnan().all()
    assert torch.equal(accuracy, same_accuracy)
    assert all(torch.equal(grads[n], same_grads[n]) for n in grads)


@needs_compiler
def test_a_members_numbers_do_not_depend_on_its_cohort():
    model = Transformer(ModelConfig(name="transformer", d_emb=24, d_hidden=20), 13, 13)
    params = model.init_cohort([0, 1, 2])
    inputs, labels = _tokens(13, 90, 5)
    loss, _, grads = model.loss_and_grads(params, None, inputs, labels, torch.float64)
    alone = model.loss_and_grads({n: t[1:2] for n, t in params.items()}, None, inputs, labels,
                                 torch.float64)
    assert torch.equal(loss[1:2], alone[0])
    for name in grads:
        assert torch.equal(grads[name][1:2], alone[2][name]), name


@pytest.mark.parametrize("pos_embed", [False, True])
def test_a_transformer_cohort_in_chunks_has_the_numbers_of_one_call(pos_embed):
    """Six members, four at a time on a CPU (each chunk writing its gradients into its rows of
    the cohort's): the loss, accuracy and every gradient of one call over all six, bitwise."""
    model = Transformer(ModelConfig(name="transformer", d_emb=24, d_hidden=20,
                                    pos_embed=pos_embed, biases=pos_embed), 13, 13)
    assert model.cpu_members_at_a_time == 4
    params = model.init_cohort(range(6))
    generator = torch.Generator().manual_seed(2)
    masks = {n: (torch.rand(params[n].shape, generator=generator) > 0.3).float()
             for n in model.prunable}
    inputs, labels = _tokens(13, 90, 7)
    whole = model.loss_and_grads(params, masks, inputs, labels, torch.float64)
    chunked = cohort_loss_and_grads(model, params, masks, inputs, labels, torch.float64)
    assert torch.equal(whole[0], chunked[0]) and torch.equal(whole[1], chunked[1])
    assert whole[2].keys() == chunked[2].keys()
    for name, grad in whole[2].items():
        assert torch.equal(grad, chunked[2][name]), name


@needs_compiler
def test_the_mlps_pair_passes_by_the_kernels_are_bitwise_pytorchs():
    """The MLP's gathers, add and ReLU, and their backward with its scatters, do PyTorch's
    arithmetic in PyTorch's order: the same bits (pairs (t, t) and repeated tokens included)."""
    generator = torch.Generator().manual_seed(5)
    table = torch.randn(3, 67, 12, generator=generator)
    pairs, _ = _tokens(67, 500, 2)
    pairs[:10, 1] = pairs[:10, 0]
    hidden = native.pair_relu_forward(table, pairs)
    assert torch.equal(hidden, torch.relu(table.index_select(1, pairs[:, 0])
                                          + table.index_select(1, pairs[:, 1])))
    d_hidden = torch.randn(hidden.shape, generator=generator)
    assert torch.equal(native.pair_relu_backward(hidden, d_hidden, pairs, 67),
                       mlp_module._pair_relu_backward(hidden, d_hidden, pairs, 67))


@needs_compiler
def test_the_mlp_by_the_kernels_agrees_with_float64(monkeypatch):
    """A masked MLP step by the kernels (their own cross-entropy since mlp engine 2) and by
    PyTorch both agree with float64 (the exact definition, tested against autograd in
    test_engine) to float32 precision, by another rounding."""
    model = MLP(ModelConfig(d_emb=40, d_hidden=12), 67, 67)
    params = model.init_cohort([0, 1, 2])
    generator = torch.Generator().manual_seed(3)
    params = {n: t + 0.3 * torch.randn(t.shape, generator=generator) for n, t in params.items()}
    masks = {n: torch.stack([magnitude_mask({n: params[n][k]}, 0.6)[n] for k in range(3)])
             for n in model.prunable}
    inputs, labels = _tokens(67, 500, 1)
    _both_paths_agree_with_float64(model, params, masks, inputs, labels, monkeypatch)


def _pass_numbers(model, params, masks, inputs, labels, with_grads, with_loss):
    with torch.inference_mode():
        loss, accuracy, grads = model.loss_and_grads(params, masks, inputs, labels,
                                                     torch.float64, with_grads, with_loss)
    return [loss, accuracy, *(grads[name] for name in sorted(grads or {}))]


WHOLE_PASSES = {  # the models whose whole pass runs in one call, and that call
    "mlp": (lambda: MLP(ModelConfig(d_emb=40, d_hidden=12), 67, 67), "mlp_loss_and_grads"),
    "transformer": (lambda: Transformer(ModelConfig(name="transformer", d_emb=32, d_hidden=24,
                                                    pos_embed=False, biases=False), 31, 31),
                    "transformer_loss_and_grads"),
}


@needs_compiler
@pytest.mark.parametrize("model_name", sorted(WHOLE_PASSES))
def test_a_whole_pass_in_one_call_has_every_bit_of_torch_products_between_kernels(
        model_name, monkeypatch):
    """A model's whole pass in one call of the kernels, its products by PyTorch's own sgemm_,
    against torch.bmm between the kernels: the same losses, accuracies and gradients, bit for
    bit, for a cohort of masked members, with and without gradients and loss."""
    if not native.blas_available():
        pytest.skip("this PyTorch exports no sgemm_ giving torch.bmm's bits")
    make_model, whole_pass_name = WHOLE_PASSES[model_name]
    model = make_model()
    generator = torch.Generator().manual_seed(4)
    params = {n: t + 0.3 * torch.randn(t.shape, generator=generator)
              for n, t in model.init_cohort([0, 1, 2]).items()}
    masks = {n: (torch.rand(params[n].shape, generator=generator) > 0.4).float()
             for n in model.prunable}
    inputs, labels = _tokens(model.vocab, 300, 1)
    calls = []
    whole_pass = getattr(native, whole_pass_name)
    for member_masks in (None, masks):
        for with_grads, with_loss in ((True, True), (True, False), (False, True)):
            args = (model, params, member_masks, inputs, labels, with_grads, with_loss)
            monkeypatch.setattr(native, whole_pass_name,
                                lambda *a: calls.append(1) or whole_pass(*a))
            one_call = _pass_numbers(*args)
            assert len(calls) == 1  # the path under test was taken
            monkeypatch.setattr(native, "blas_available", lambda: False)
            by_bmm = _pass_numbers(*args)
            assert len(calls) == 1
            calls.clear()
            monkeypatch.undo()
            assert len(one_call) == len(by_bmm) == 2 + with_grads * len(model.specs)
            for ours, theirs in zip(one_call, by_bmm):
                assert torch.equal(ours, theirs) or (ours.isnan().all() and theirs.isnan().all())


@needs_compiler
def test_a_bound_pass_reads_its_weights_current_values_and_binds_no_copy():
    """``native.MLPPass`` binds its weights' memory once: after they change in place, a call
    gives what a fresh one-call pass gives on the new values, for any examples (another number
    of them too), its gradients in the same tensors as before; a weight that is not contiguous
    (a copy would be bound) is refused."""
    if not native.blas_available():
        pytest.skip("this PyTorch exports no sgemm_ giving torch.bmm's bits")
    model = MLP(ModelConfig(d_emb=40, d_hidden=12), 31, 31)
    weights = model.init_cohort([0, 1])
    bound = native.MLPPass(weights)
    first_grads = bound(*_tokens(31, 200, 3), True)[2]
    for tensor in weights.values():
        tensor.mul_(1.5)
    for n in (200, 350, 120):
        inputs, labels = _tokens(31, n, n)
        loss, accuracy, grads = bound(inputs, labels, True)
        assert grads is first_grads
        fresh = native.mlp_loss_and_grads(weights, inputs, labels, True, True)
        assert torch.equal(loss, fresh[0]) and torch.equal(accuracy, fresh[1])
        assert all(torch.equal(grads[name], fresh[2][name]) for name in grads)
    strided = weights["W_in"].transpose(1, 2).contiguous().transpose(1, 2)  # same shape
    with pytest.raises(ValueError, match="contiguous"):
        native.MLPPass({**weights, "W_in": strided})


@needs_compiler
@pytest.mark.parametrize("model_name", sorted(WHOLE_PASSES))
def test_a_whole_pass_has_the_same_numbers_on_any_number_of_threads(model_name):
    """A whole pass's products run on one thread whatever PyTorch's setting: a member's numbers
    do not depend on the thread count (PyTorch's own matmul of one member does)."""
    if not native.blas_available():
        pytest.skip("this PyTorch exports no sgemm_ giving torch.bmm's bits")
    # the paper's sizes: the BLAS splits products this large across threads, small ones not
    config = ModelConfig(name=model_name, **({} if model_name == "mlp" else
                                             {"pos_embed": False, "biases": False}))
    model = build_model(config, 67, 67)
    params = model.init_cohort([0])
    inputs, labels = _tokens(67, 911, 2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _pass_numbers(model, params, None, inputs, labels, True, True)
        torch.set_num_threads(2)  # (asked for more threads than cores, MKL may take one)
        two = _pass_numbers(model, params, None, inputs, labels, True, True)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


@needs_compiler
def test_a_blas_whose_products_are_not_torchs_is_left_alone(monkeypatch):
    """Where the sgemm_ found does not give torch.bmm's bits (another BLAS, other
    arguments), the kernels do no products: the MLP calls torch.bmm between them."""
    monkeypatch.setattr(native, "_products_are_torchs", lambda library: False)
    native._library.cache_clear()
    try:
        assert native.available() and not native.blas_available()
        model = MLP(ModelConfig(d_emb=16, d_hidden=8), 11, 11)
        inputs, labels = _tokens(11, 40, 0)
        loss, _, grads = model.loss_and_grads(model.init_cohort([0]), None, inputs, labels,
                                              torch.float64)
        assert torch.isfinite(loss).all() and set(grads) == set(model.specs)
    finally:
        native._library.cache_clear()


def test_a_failed_build_falls_back_to_pytorch_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("GROK_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", shutil.which("false") or "/bin/false")
    monkeypatch.setattr(native, "_compiler", lambda: shutil.which("false") or "/bin/false")
    native._library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="slower PyTorch path"):
            assert not native.available()
        assert not list((tmp_path / "cache").glob("*.so"))  # no half-written library left
        model = Transformer(ModelConfig(name="transformer", d_emb=8, d_hidden=8), 7, 7)
        inputs, labels = _tokens(7, 20, 0)
        loss, _, _ = model.loss_and_grads(model.init_cohort([0]), None, inputs, labels)
        assert torch.isfinite(loss).all()
    finally:
        native._library.cache_clear()


@needs_compiler
def test_an_unwritable_cache_folder_builds_into_the_temp_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GROK_NATIVE_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(native.tempfile, "gettempdir", lambda: str(tmp_path / "temp"))
    native._library.cache_clear()
    try:
        assert native.available()
        assert list((tmp_path / "temp").glob("grokking-tickets-*/kernels-*.so"))
    finally:
        native._library.cache_clear()


def test_grok_native_0_switches_the_kernels_off(monkeypatch):
    monkeypatch.setenv("GROK_NATIVE", "0")
    native._library.cache_clear()
    try:
        assert not native.available()
        assert not native.usable(torch.zeros(2))
    finally:
        native._library.cache_clear()
