"""Stacked ("cohort") models: every parameter has a leading member dimension K.

A model here is a pure function of a parameter dict, so K independent networks that share an
architecture train as one: each ``logits`` call is a handful of batched matmuls instead of K
small models. Member k's slice ``params[name][k]`` is exactly the network a solo run of that
member would have. Models declare which tensors are prunable; masks multiply those tensors in
the forward pass (see ``apply_masks``), so pruned weights get zero gradient.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from .config import ModelConfig

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ParamSpec:
    """Shape of one member's tensor, its fan-in for N(0, (kappa/sqrt(fan_in))^2) init
    (fan_in None: initialised to zero), and whether pruning may remove its entries."""

    shape: tuple[int, ...]
    fan_in: int | None
    prunable: bool


class CohortModel:
    """Base class: parameter specs, seeded per-member init, and a stacked forward."""

    specs: dict[str, ParamSpec]
    embedding: str  # the token embedding table [vocab, d] (SynFlow's all-ones input sums its rows)

    def __init__(self, config: ModelConfig, vocab: int, classes: int,
                 loss: str = "cross_entropy") -> None:
        self.config = config
        self.vocab = vocab
        self.classes = classes
        self.loss = loss  # 'cross_entropy', 'mse' (one-hot targets, or the value) or 'hinge'

    def ones_input(self, params: Mapping[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(parameters, one input) giving the network's output on the all-ones input (SynFlow):
        for token models the all-ones one-hot vector, i.e. every embedding row summed."""
        table = self.embedding
        return {**params, table: params[table].sum(dim=-2, keepdim=True)}, torch.zeros(
            1, 2, dtype=torch.long)

    def loss_and_accuracy(self, logits: torch.Tensor, labels: torch.Tensor,
                          loss_dtype: torch.dtype = torch.float32
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-member mean loss [K] (this model's loss) and accuracy [K] of [K, N, C] logits."""
        if labels.is_floating_point():  # a regression's targets
            return regression_mse_and_r2(logits, labels, loss_dtype)
        if self.loss == "mse":
            return mse_and_accuracy(logits, labels, loss_dtype)
        if self.loss == "hinge":
            return hinge_and_accuracy(logits, labels, loss_dtype)
        return cross_entropy_and_accuracy(logits, labels, loss_dtype)

    @property
    def prunable(self) -> tuple[str, ...]:
        """Names of the tensors a pruning method may mask."""
        return tuple(name for name, spec in self.specs.items() if spec.prunable)

    def init_member(self, seed: int) -> Params:
        """theta_0 of one member: a generator seeded with ``seed`` draws each tensor in order."""
        generator = torch.Generator().manual_seed(int(seed))
        params = {}
        for name, spec in self.specs.items():
            if spec.fan_in is None:
                params[name] = torch.zeros(spec.shape)
            else:
                std = self.config.init_scale / math.sqrt(spec.fan_in)
                params[name] = torch.randn(spec.shape, generator=generator) * std
        return params

    def init_cohort(self, seeds: Sequence[int]) -> Params:
        """Stacked theta_0 for members with the given seeds."""
        return stack_members([self.init_member(seed) for seed in seeds])

    def logits(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """[K, N, classes] logits for ``inputs`` [N, 2] of token ids (params already masked)."""
        raise NotImplementedError

    def loss_and_grads(self, params: Mapping[str, torch.Tensor],
                       masks: Mapping[str, torch.Tensor] | None, inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype = torch.float32,
                       with_grads: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, Params | None]:
        """Per-member mean cross-entropy [K], accuracy [K] and, if asked, the gradients of the
        summed member losses with respect to the raw (unmasked) ``params``.

        Generic version: autograd through ``logits``. Models may override it with an exact
        hand-written backward (the MLP does; a test compares the two).
        """
        if not with_grads:
            with torch.no_grad():
                loss, acc = self.loss_and_accuracy(
                    self.logits(apply_masks(params, masks), inputs), labels, loss_dtype)
            return loss, acc, None
        leaves = {n: t.detach().requires_grad_(True) for n, t in params.items()}
        loss, acc = self.loss_and_accuracy(
            self.logits(apply_masks(leaves, masks), inputs), labels, loss_dtype)
        grads = torch.autograd.grad(loss.sum(), list(leaves.values()))
        return loss.detach(), acc, dict(zip(leaves, grads))


class MLP(CohortModel):
    """Eq. (1): softmax(ReLU((E_a + E_b) W_in) W_out W_unemb), no biases.

    Forward uses an exact reassociation: (E_a + E_b) W_in = (W_emb W_in)[a] + (W_emb W_in)[b],
    and W_out W_unemb is one [hidden, classes] matrix. The product of two small matrices per
    step replaces the [N, d_emb] activations of the naive form (see ``naive_logits``).
    """

    embedding = "W_emb"

    def __init__(self, config: ModelConfig, vocab: int, classes: int,
                 loss: str = "cross_entropy") -> None:
        super().__init__(config, vocab, classes, loss)
        d, h = config.emb_width, config.hidden_width
        self.specs = {
            "W_emb": ParamSpec((vocab, d), vocab, True),
            "W_in": ParamSpec((d, h), d, True),
            "W_out": ParamSpec((h, d), h, True),
            "W_unemb": ParamSpec((d, classes), d, True),
        }

    def logits(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        token_hidden = torch.bmm(params["W_emb"], params["W_in"])  # [K, vocab, h]
        hidden_logits = torch.bmm(params["W_out"], params["W_unemb"])  # [K, h, classes]
        pre = token_hidden[:, inputs[:, 0]] + token_hidden[:, inputs[:, 1]]
        return torch.bmm(torch.relu(pre), hidden_logits)

    def loss_and_grads(self, params: Mapping[str, torch.Tensor],
                       masks: Mapping[str, torch.Tensor] | None, inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype = torch.float32,
                       with_grads: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, Params | None]:
        """Exact hand-written forward and backward of eq. (1) (no autograd graph).

        Logits are formed transposed, [K, classes, N], so the softmax reductions run along
        contiguous memory; gradients of masked tensors are multiplied by their masks. Another
        loss than cross-entropy takes the generic (autograd) path.
        """
        if self.loss != "cross_entropy":
            return super().loss_and_grads(params, masks, inputs, labels, loss_dtype, with_grads)
        eff = apply_masks(params, masks)
        w_emb, w_in, w_out, w_unemb = eff["W_emb"], eff["W_in"], eff["W_out"], eff["W_unemb"]
        token_hidden = torch.bmm(w_emb, w_in)  # [K, vocab, h]
        hidden_logits = torch.bmm(w_out, w_unemb)  # [K, h, classes]
        a, b = inputs[:, 0], inputs[:, 1]
        pre = token_hidden.index_select(1, a) + token_hidden.index_select(1, b)  # [K, N, h]
        hidden = torch.relu(pre)
        logits_t = torch.bmm(hidden_logits.transpose(1, 2), hidden.transpose(1, 2))  # [K, C, N]
        loss, acc, d_logits_t = _transposed_cross_entropy(logits_t, labels, loss_dtype,
                                                          with_grads)
        if not with_grads:
            return loss, acc, None
        d_hidden_logits = torch.bmm(hidden.transpose(1, 2), d_logits_t.transpose(1, 2))
        d_pre = torch.bmm(d_logits_t.transpose(1, 2), hidden_logits.transpose(1, 2))
        d_pre = torch.ops.aten.threshold_backward(d_pre, hidden, 0)  # ReLU'; fast on CPU
        # Scatter-add into a [K * vocab, h] view: far faster on CPU than index_add_ along dim 1.
        k_count, vocab, width = token_hidden.shape
        offsets = torch.arange(k_count, device=inputs.device)[:, None] * vocab
        d_flat = d_pre.reshape(-1, width)
        d_token_hidden = torch.zeros(k_count * vocab, width, dtype=d_pre.dtype,
                                     device=d_pre.device)
        d_token_hidden.index_add_(0, (a + offsets).reshape(-1), d_flat)
        d_token_hidden.index_add_(0, (b + offsets).reshape(-1), d_flat)
        d_token_hidden = d_token_hidden.view(k_count, vocab, width)
        grads = {
            "W_emb": torch.bmm(d_token_hidden, w_in.transpose(1, 2)),
            "W_in": torch.bmm(w_emb.transpose(1, 2), d_token_hidden),
            "W_out": torch.bmm(d_hidden_logits, w_unemb.transpose(1, 2)),
            "W_unemb": torch.bmm(w_out.transpose(1, 2), d_hidden_logits),
        }
        if masks:
            for name, mask in masks.items():
                grads[name].mul_(mask)
        return loss, acc, grads

    def effective_input_weights(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """[K, hidden, vocab]: what token x adds to each hidden neuron's input (W_emb W_in)^T."""
        return torch.bmm(params["W_emb"], params["W_in"]).transpose(1, 2)

    @staticmethod
    def naive_logits(params: Mapping[str, torch.Tensor], inputs: torch.Tensor,
                     vocab: int) -> torch.Tensor:
        """Eq. (1) written the straightforward way (one-hot matmuls); for tests and benchmarks."""
        dtype = params["W_emb"].dtype
        one_hot_a = torch.nn.functional.one_hot(inputs[:, 0], vocab).to(dtype)
        one_hot_b = torch.nn.functional.one_hot(inputs[:, 1], vocab).to(dtype)
        emb = one_hot_a @ params["W_emb"] + one_hot_b @ params["W_emb"]  # [K, N, d]
        hidden = torch.relu(emb @ params["W_in"])
        return hidden @ params["W_out"] @ params["W_unemb"]


class Transformer(CohortModel):
    """One layer, one head, no LayerNorm; logits from the last of the two positions.

    x1 = W_E[x] + W_pos; attention (causal, scaled by 1/sqrt(d_head)); x2 = x1 + W_O attn;
    x3 = x2 + W_out ReLU(W_in x2 + b_in) + b_out; logits = W_U x3 (App. B.2). W_pos and the MLP
    biases follow the paper and can be dropped (model.pos_embed / model.biases) to match the
    authors' code. Only the last position's residual is computed: nothing else reaches it.
    """

    n_ctx = 2
    embedding = "W_E"

    def __init__(self, config: ModelConfig, vocab: int, classes: int,
                 loss: str = "cross_entropy") -> None:
        super().__init__(config, vocab, classes, loss)
        d, m = config.emb_width, config.hidden_width
        specs = {"W_E": ParamSpec((vocab, d), vocab, True)}
        if config.pos_embed:
            specs["W_pos"] = ParamSpec((self.n_ctx, d), d, False)
        specs.update({
            "W_Q": ParamSpec((d, d), d, True),
            "W_K": ParamSpec((d, d), d, True),
            "W_V": ParamSpec((d, d), d, True),
            "W_O": ParamSpec((d, d), d, True),
            "W_in": ParamSpec((d, m), d, True),
            "W_out": ParamSpec((m, d), m, True),
            "W_U": ParamSpec((d, classes), d, True),
        })
        if config.biases:
            specs["b_in"] = ParamSpec((m,), None, False)
            specs["b_out"] = ParamSpec((d,), None, False)
        self.specs = specs

    def logits(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        # Exact reassociation: inputs are tokens, so every projection of an embedding is a
        # per-token table (position i: (W_E + W_pos[i]) W_K, ... W_V W_O) gathered per example;
        # attention then needs no [N, d] x [d, d] product (``naive_logits`` is the plain form).
        d = params["W_E"].shape[-1]
        tables = [params["W_E"] + params["W_pos"][:, i:i + 1] if "W_pos" in params
                  else params["W_E"] for i in range(self.n_ctx)]  # [K, vocab, d] per position
        value_out = torch.bmm(params["W_V"], params["W_O"])
        tokens = [inputs[:, i] for i in range(self.n_ctx)]
        last = _gather_rows(tables[-1], tokens[-1])  # [K, N, d]
        query = _gather_rows(torch.bmm(tables[-1], params["W_Q"]), tokens[-1])
        scores = torch.stack([
            (_gather_rows(torch.bmm(table, params["W_K"]), token) * query).sum(-1)
            for table, token in zip(tables, tokens)], dim=-1) / math.sqrt(d)
        weights = torch.softmax(scores, dim=-1)  # [K, N, n_ctx]: the last position sees both
        resid = last
        for i, (table, token) in enumerate(zip(tables, tokens)):
            resid = resid + weights[..., i:i + 1] * _gather_rows(
                torch.bmm(table, value_out), token)
        return self._mlp_and_unembed(params, resid)

    @staticmethod
    def _mlp_and_unembed(params: Mapping[str, torch.Tensor],
                         resid: torch.Tensor) -> torch.Tensor:
        """x3 = x2 + W_out ReLU(W_in x2 + b_in) + b_out; logits = W_U x3."""
        pre = torch.bmm(resid, params["W_in"])
        if "b_in" in params:
            pre = pre + params["b_in"][:, None]
        mlp_out = torch.bmm(torch.relu(pre), params["W_out"])
        if "b_out" in params:
            mlp_out = mlp_out + params["b_out"][:, None]
        return torch.bmm(resid + mlp_out, params["W_U"])

    def naive_logits(self, params: Mapping[str, torch.Tensor],
                     inputs: torch.Tensor) -> torch.Tensor:
        """App. B.2 written the straightforward way, per example; for tests."""
        x = params["W_E"][:, inputs]  # [K, N, 2, d]
        if "W_pos" in params:
            x = x + params["W_pos"][:, None]
        k_count, n, _, d = x.shape
        flat = x.reshape(k_count, n * self.n_ctx, d)
        keys = torch.bmm(flat, params["W_K"]).view(k_count, n, self.n_ctx, d)
        values = torch.bmm(flat, params["W_V"]).view(k_count, n, self.n_ctx, d)
        last = x[:, :, -1]  # [K, N, d]
        query = torch.bmm(last, params["W_Q"])
        scores = (keys * query[:, :, None]).sum(-1) / math.sqrt(d)  # last position sees both
        attended = (torch.softmax(scores, dim=-1)[..., None] * values).sum(2)
        resid = last + torch.bmm(attended, params["W_O"])
        return self._mlp_and_unembed(params, resid)


# Each vector task's reference MLP: hidden widths and whether its layers have biases.
VECTOR_MLP_LAYOUTS = {
    "digits": ((200, 200), True),      # Omnigrok's MNIST MLP, 784 (64) -> 200 -> 200 -> 10
    "mnist": ((200, 200), True),
    "polynomial": ((40, 48, 500), False),  # the authors' 40 -> 40 -> 48 -> 500 -> 1, no biases
    "parity": ((1000,), True),         # one hidden ReLU layer of width 1000
}


class VectorMLP(CohortModel):
    """The MLP of feature-vector tasks: x -> ReLU(x W1 + b1) -> ... -> . W_last + b_last, with
    the task's hidden widths (``VECTOR_MLP_LAYOUTS``; ``model.d_hidden`` makes every hidden
    layer that wide) and biases if the task's reference has them. Weights
    N(0, (kappa / sqrt(fan_in))^2) and prunable; biases zero and never pruned."""

    embedding = ""  # no embedding table: the all-ones input is a vector of ones

    def __init__(self, config: ModelConfig, features: int, classes: int,
                 loss: str = "cross_entropy", task: str = "digits") -> None:
        super().__init__(config, features, classes, loss)
        widths, self.biases = VECTOR_MLP_LAYOUTS[task]
        if config.d_hidden:
            widths = (config.d_hidden,) * len(widths)
        sizes = (features, *widths, classes)
        self.layers = len(sizes) - 1
        self.specs = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            self.specs[f"W{layer}"] = ParamSpec((fan_in, fan_out), fan_in, True)
            if self.biases:
                self.specs[f"b{layer}"] = ParamSpec((fan_out,), None, False)

    def logits(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """[K, N, classes] outputs of ``inputs`` [N, features]."""
        return self._forward(params, inputs)[0]

    def _forward(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor
                 ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], bool]:
        """(outputs [K, N, classes], each layer's input, each layer's weight, lone). A lone
        member (K=1) runs plain 2-D matmuls, as nn.Linear (batched ones cost more); a cohort
        runs batched ones over a stride-0 view of the shared inputs (no copy per member), the
        bias added inside the matmul (addmm / baddbmm)."""
        lone = params["W1"].shape[0] == 1
        layers = range(1, self.layers + 1)
        weights = [params[f"W{layer}"][0] if lone else params[f"W{layer}"] for layer in layers]
        biases = [(params[f"b{layer}"][0] if lone else params[f"b{layer}"][:, None])
                  if self.biases else None for layer in layers]
        x = inputs.to(weights[0].dtype)  # pruning scores in float64
        layer_inputs = [x if lone else x.expand(len(params["W1"]), *x.shape)]
        for layer, weight, bias in zip(layers, weights, biases):
            hidden = layer_inputs[-1]
            if bias is None:
                out = hidden.mm(weight) if lone else torch.bmm(hidden, weight)
            else:
                out = torch.addmm(bias, hidden, weight) if lone else torch.baddbmm(
                    bias, hidden, weight)
            if layer < self.layers:
                layer_inputs.append(torch.relu(out))
        return (out.unsqueeze(0) if lone else out), layer_inputs, weights, lone

    def loss_and_grads(self, params: Mapping[str, torch.Tensor],
                       masks: Mapping[str, torch.Tensor] | None, inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype = torch.float32,
                       with_grads: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, Params | None]:
        """Hand-written forward and backward (no autograd graph: at small batches the graph's
        bookkeeping costs more than the arithmetic); gradients of masked tensors are
        multiplied by their masks. Same values as the generic autograd path (a test compares
        them). A hinge over more than two classes takes the generic path."""
        if not with_grads or (self.loss == "hinge" and self.classes > 2):
            return super().loss_and_grads(params, masks, inputs, labels, loss_dtype, with_grads)
        logits, layer_inputs, weights, lone = self._forward(apply_masks(params, masks), inputs)
        loss, acc = self.loss_and_accuracy(logits, labels, loss_dtype)
        grad = output_gradient(self.loss, logits, labels, loss_dtype)
        grad = grad[0] if lone else grad
        grads: Params = {}
        for layer in range(self.layers, 0, -1):
            hidden, weight = layer_inputs[layer - 1], weights[layer - 1]
            grads[f"W{layer}"] = hidden.t().mm(grad) if lone else torch.bmm(
                hidden.transpose(1, 2), grad)
            if self.biases:
                grads[f"b{layer}"] = grad.sum(dim=-2)
            if layer > 1:
                grad = grad.mm(weight.t()) if lone else torch.bmm(grad, weight.transpose(1, 2))
                grad = torch.ops.aten.threshold_backward(grad, hidden, 0)  # ReLU'
        if lone:
            grads = {name: g.unsqueeze(0) for name, g in grads.items()}
        if masks:
            for name, mask in masks.items():
                grads[name].mul_(mask)
        return loss, acc, {name: grads[name] for name in params}

    def ones_input(self, params: Mapping[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The parameters as they are and one input of ones."""
        return dict(params), torch.ones(1, self.vocab, dtype=params["W1"].dtype)


def output_gradient(loss: str, logits: torch.Tensor, labels: torch.Tensor,
                    loss_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """d(sum over members of each member's mean loss) / d logits [K, N, C], for the losses of
    ``CohortModel.loss_and_accuracy`` (regression MSE, one-hot MSE, cross-entropy, two-class
    hinge), computed in ``loss_dtype`` as their forward is, returned in the logits' dtype."""
    k_count, n, classes = logits.shape
    z = logits.detach()
    if labels.is_floating_point():  # regression: mean (z - y)^2 over examples
        error = z.squeeze(-1).to(loss_dtype) - labels.to(loss_dtype)
        return (2.0 / n * error).unsqueeze(-1).to(z.dtype)
    one_hot = torch.nn.functional.one_hot(labels, classes).to(loss_dtype)
    if loss == "mse":  # mean over examples and classes
        return (2.0 / (n * classes) * (z.to(loss_dtype) - one_hot)).to(z.dtype)
    if loss == "hinge":  # two classes: max(0, 1 + z_other - z_label)
        index = labels.view(1, n, 1).expand(k_count, n, 1)
        margin = 1.0 + z.gather(-1, 1 - index) - z.gather(-1, index)
        active = (margin > 0).to(z.dtype) / n
        grad = torch.zeros_like(z)
        grad.scatter_(-1, index, -active)
        return grad.scatter_(-1, 1 - index, active)
    probabilities = torch.softmax(z.to(loss_dtype), dim=-1)
    return ((probabilities - one_hot) / n).to(z.dtype)


def regression_mse_and_r2(outputs: torch.Tensor, targets: torch.Tensor,
                          loss_dtype: torch.dtype = torch.float32
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean squared error of [K, N, 1] outputs against [N] targets, and R^2 =
    1 - MSE / Var(targets) (the regression task's "accuracy": 1 is a perfect fit, 0 is no
    better than predicting the mean)."""
    error = outputs.squeeze(-1).to(loss_dtype) - targets.to(loss_dtype)
    loss = error.pow(2).mean(dim=1)
    variance = targets.to(loss_dtype).var(unbiased=False).clamp_min(1e-12)
    r2 = (1.0 - loss.detach() / variance).to(torch.float32)
    return loss.to(torch.float32), r2


def hinge_and_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                       loss_dtype: torch.dtype = torch.float32
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean multi-class hinge loss max(0, 1 + max_{j != y} z_j - z_y) (for two
    classes the binary hinge max(0, 1 - y f) with f = z_1 - z_0) and accuracy. In the logits'
    dtype: unlike a log-softmax, a margin loses nothing to float32 (``loss_dtype`` unused)."""
    k_count, n, classes = logits.shape
    index = labels.view(1, n, 1).expand(k_count, n, 1)
    label_z = logits.gather(-1, index).squeeze(-1)
    if classes == 2:  # the other logit is the one not taken
        others = logits.gather(-1, 1 - index).squeeze(-1)
    else:
        others = logits.scatter(-1, index, float("-inf")).amax(-1)
    loss = torch.relu(1.0 + others - label_z).mean(1).to(torch.float32)
    margin = (label_z - others).detach()
    return loss, (margin >= 0).to(torch.float32).mean(1)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[K] fraction of examples whose label's logit is the largest (ties included)."""
    k_count, n, _ = logits.shape
    label_logit = logits.detach().gather(-1, labels.view(1, n, 1).expand(k_count, n, 1))
    return (label_logit.squeeze(-1) >= logits.detach().amax(-1)).to(torch.float32).mean(1)


def mse_and_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                     loss_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean squared error against one-hot targets (mean over examples and classes,
    as torch.nn.MSELoss) and accuracy (the label's output the largest, ties included)."""
    k_count, n, classes = logits.shape
    target = torch.nn.functional.one_hot(labels, classes).to(loss_dtype)
    loss = (logits.to(loss_dtype) - target).pow(2).mean(dim=(1, 2)).to(torch.float32)
    return loss, _accuracy(logits, labels)


def cross_entropy_and_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                               loss_dtype: torch.dtype = torch.float32
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean cross-entropy and accuracy of [K, N, C] logits.

    A prediction counts as correct when the label's logit is the largest (ties included).
    """
    k_count, n, classes = logits.shape
    logp = torch.log_softmax(logits.to(loss_dtype), dim=-1)
    label_logp = logp.gather(-1, labels.view(1, n, 1).expand(k_count, n, 1)).squeeze(-1)
    loss = -label_logp.mean(1).to(torch.float32)
    return loss, _accuracy(logits, labels)


def _transposed_cross_entropy(logits_t: torch.Tensor, labels: torch.Tensor,
                              loss_dtype: torch.dtype, with_grads: bool
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Mean cross-entropy [K], accuracy [K] and d(sum of member losses)/d logits for
    [K, C, N] logits; same definitions as ``cross_entropy_and_accuracy``.

    The [K, C, N] passes run in the logits' dtype (float32); the two quantities in which float32
    loses a confident prediction run in ``loss_dtype``: the normaliser sum_j exp(z_j - max) =
    1 + tiny (so the loss log(1 + tiny) does not round to 0) and the label's gradient
    p_y - 1 = (e_y - total) / total (so it does not round to 0 either). With float64 this agrees
    with a float64 log-softmax to float32 precision in every entry (a test checks it) at a
    fraction of the cost of converting every logit to float64.
    """
    k_count, _, n = logits_t.shape
    index = labels.view(1, 1, n).expand(k_count, 1, n)
    z_max = logits_t.amax(1, keepdim=True)
    label_z = logits_t.gather(1, index)
    acc = (label_z >= z_max).to(torch.float32).mean(-1).squeeze(1)
    exp = (logits_t - z_max).exp_()  # in (0, 1]; the largest is exactly 1
    total = exp.sum(1, keepdim=True, dtype=loss_dtype)
    loss = (total.log() - (label_z - z_max).to(loss_dtype)).mean(-1).squeeze(1)
    loss = loss.to(torch.float32)
    if not with_grads:
        return loss, acc, None
    label_grad = (exp.gather(1, index).to(loss_dtype) - total) / total
    d_logits = exp.div_(total.to(exp.dtype))  # p_j, j != y: relative precision kept
    d_logits.scatter_(1, index, label_grad.to(exp.dtype))
    return loss, acc, d_logits.div_(n)


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[:, index] for a [K, rows, d] table, as one index_select on a [K * rows, d] view
    (its backward is a fast scatter along dim 0; along dim 1 it is several times slower)."""
    k_count, rows, width = table.shape
    offsets = torch.arange(k_count, device=index.device)[:, None] * rows
    flat_index = (index[None] + offsets).reshape(-1)
    return table.reshape(k_count * rows, width).index_select(0, flat_index).view(
        k_count, -1, width)


MODEL_REGISTRY: dict[str, type[CohortModel]] = {"mlp": MLP, "transformer": Transformer}
VECTOR_MODEL_REGISTRY: dict[str, type[CohortModel]] = {"mlp": VectorMLP}


def build_model(config: ModelConfig, vocab: int, classes: int, kind: str = "tokens",
                loss: str = "cross_entropy", task: str = "modular") -> CohortModel:
    """The registered model named ``config.name`` for inputs of ``kind`` ('tokens': pairs of
    ``vocab`` tokens; 'vectors': ``vocab`` features, the MLP of ``task``; 'sequences': token
    sequences over ``vocab`` ids), with its loss."""
    if kind == "vectors":
        return VECTOR_MODEL_REGISTRY[config.name](config, vocab, classes, loss, task)
    if kind == "sequences":
        from .lstm import LSTMClassifier

        return LSTMClassifier(config, vocab, classes, loss)
    return MODEL_REGISTRY[config.name](config, vocab, classes, loss)


def stack_members(members: Sequence[Mapping[str, torch.Tensor]]) -> Params:
    """Stack per-member dicts into one dict of [K, ...] tensors."""
    return {name: torch.stack([m[name] for m in members]) for name in members[0]}


def member_slice(params: Mapping[str, torch.Tensor], k: int) -> Params:
    """Member k's own tensors (copies, detached)."""
    return {name: tensor[k].detach().clone() for name, tensor in params.items()}


def apply_masks(params: Mapping[str, torch.Tensor],
                masks: Mapping[str, torch.Tensor] | None) -> Mapping[str, torch.Tensor]:
    """Effective weights W * m for masked tensors; unmasked tensors pass through."""
    if not masks:
        return params
    return {name: params[name] * masks[name] if name in masks else params[name]
            for name in params}
