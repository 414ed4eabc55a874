"""The one-layer, one-head transformer of App. B.2 on token pairs (modular arithmetic)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from .. import native
from ..config import ModelConfig
from .cohort import (CohortModel, Params, ParamSpec, TrainingPass, apply_masks, gather_rows,
                     masked_gradients, masked_in_place, member_rows, product_transposed,
                     scatter_rows)
from .losses import transposed_cross_entropy


class Transformer(CohortModel):
    """One layer, one head, no LayerNorm; logits from the last of the two positions.

    x1 = W_E[x] + W_pos; attention (causal, scaled by 1/sqrt(d_head)); x2 = x1 + W_O attn;
    x3 = x2 + W_out ReLU(W_in x2 + b_in) + b_out; logits = W_U x3 (App. B.2). W_pos and the MLP
    biases follow the paper and can be dropped (model.pos_embed / model.biases) to match the
    authors' code. Only the last position's residual is computed: nothing else reaches it.
    """

    n_ctx = 2
    embedding = "W_E"
    losses_by_hand = ("cross_entropy",)
    # a member-step's [N, m + C] tensors: four members' fit the cache, eight do not. Measured,
    # K=8 on one thread: 281 / 302 / 333 / 285 member-steps/s four at a time against all eight
    # at once (the MLP's smaller tensors are fastest all at once: 897 / 959 / 988 / 1059)
    cpu_members_at_a_time = 4

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
        """[K, N, classes] logits by the token tables (``_TokenTables``; ``naive_logits`` is the
        plain form, equal in float64)."""
        return _TokenTables(params).logits(inputs)

    def loss_and_grads(self, params: Mapping[str, torch.Tensor],
                       masks: Mapping[str, torch.Tensor] | None, inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype = torch.float32,
                       with_grads: bool = True, with_loss: bool = True,
                       grads_out: Params | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, Params | None]:
        """Exact hand-written forward and backward by the token tables (no autograd graph; on a
        CPU with PyTorch's BLAS, one table and no biases, all but the tables in one call of the
        kernels: ``native.transformer_loss_and_grads``, the same bits); gradients of masked
        tensors are multiplied by their masks. Another loss than cross-entropy takes the
        generic (autograd) path. ``grads_out``: contiguous tensors to write the gradients into
        (a chunk's rows of the cohort's, so that the chunks' gradients need no concatenation),
        returned as the gradients."""
        if self.needs_autograd:
            loss, acc, grads = super().loss_and_grads(params, masks, inputs, labels, loss_dtype,
                                                      with_grads)
            if grads is not None and grads_out is not None:
                grads = {n: grads_out[n].copy_(g) for n, g in grads.items()}
            return loss, acc, grads
        tables = _TokenTables(apply_masks(params, masks))
        if tables.whole_pass_native and loss_dtype == torch.float64:  # the same bits, one call
            loss, acc, grads = native.transformer_loss_and_grads(
                tables.as_tensors(), tables.p, tables.scale, inputs, labels, with_grads,
                with_loss, grads_out)
            return loss, acc, grads if grads is None else masked_gradients(grads, masks)
        example = tables.forward(inputs)
        if tables.native and loss_dtype == torch.float64:
            loss, acc, d_logits = native.cross_entropy_rows(example.logits, labels, with_grads,
                                                            with_loss)
        else:
            loss, acc, d_logits_t = transposed_cross_entropy(
                example.logits.transpose(1, 2), labels, loss_dtype, with_grads)
            d_logits = None if d_logits_t is None else d_logits_t.transpose(1, 2)
        if not with_grads:
            return loss, acc, None
        return loss, acc, masked_gradients(tables.backward(example, d_logits, grads_out), masks)

    def training_pass(self, params: Mapping[str, torch.Tensor],
                      masks: Mapping[str, torch.Tensor] | None,
                      loss_dtype: torch.dtype) -> TrainingPass | None:
        """``loss_and_grads``' one call of the kernels per ``cpu_members_at_a_time`` members
        (``native.TransformerPass``) bound to these weights: the masked ones refreshed in their
        own tensors at each call (W * m, as ``apply_masks``), the token tables made from them,
        the gradients written into one cohort's tensors and masked in place. None off that
        path (no BLAS, another device or loss, W_pos or biases, a weight not contiguous)."""
        weights = [params[name] for name in native.TRANSFORMER_WEIGHTS]
        if (self.needs_autograd or loss_dtype != torch.float64
                or set(params) != set(native.TRANSFORMER_WEIGHTS) or not native.bindable(*weights)):
            return None
        effective, refresh = masked_in_place(params, masks)
        grads = {name: torch.empty_like(t) for name, t in params.items()}
        k_count, chunk = len(weights[0]), self.cpu_members_at_a_time or len(weights[0])
        scale = _TokenTables.attention_scale(weights[0].shape[-1])
        chunks = []
        for start in range(0, k_count, chunk):
            rows = member_rows(effective, start, chunk)
            chunks.append((rows, native.TransformerPass(
                rows, scale, grads_out=member_rows(grads, start, chunk))))

        def run(inputs: torch.Tensor, labels: torch.Tensor, with_loss: bool
                ) -> tuple[torch.Tensor, torch.Tensor, Params]:
            with torch.inference_mode():  # the tables: read, never differentiated
                refresh()
                parts = [whole_pass(_TokenTables(rows).as_tensors(), inputs, labels, with_loss)
                         for rows, whole_pass in chunks]
            if len(parts) == 1:
                return parts[0][0], parts[0][1], masked_gradients(grads, masks)
            return (torch.cat([part[0] for part in parts]),
                    torch.cat([part[1] for part in parts]), masked_gradients(grads, masks))
        return run

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


@dataclass
class _Examples:
    """What the backward needs of one forward over a batch of token pairs (a, b)."""

    pairs: torch.Tensor  # [N, 2] tokens (a, b)
    first: torch.Tensor  # [K, N]: attention w0 of the last position to the first
    hidden: torch.Tensor  # [K, N, m]: the MLP's ReLU
    logits: torch.Tensor  # [K, N, C]


class _TokenTables:
    """The transformer as per-token tables, for one set of (masked) parameters.

    Inputs are tokens, so every linear map of an embedding is a table [K, vocab, .] computed
    once per step and gathered per example. Only the last position's logits count, and it
    attends to two positions: a two-way softmax of s0 = Q K0^T [last token, first token] and
    s1 = rowsum(Q * K1) [last token] (Q = T1 W_Q, K_i = T_i W_K, T_i = W_E + W_pos[i]). Its
    residual x2 = T1[b] + w0 G0[a] + w1 G1[b] (G_i = T_i W_V W_O) reaches the logits only
    through W_in and W_U, so both maps are folded into the tables (M = [W_in | W_U]: L = T1 M,
    F_i = G_i M). Per example what remains is gathers, a ReLU and one [N, m] x [m, C] product
    with W_out W_U, forward and backward: the rows pass, by ``grok_core.native`` on a CPU (one
    pass over each example) or by PyTorch gathers and scatters elsewhere.

    Every table of a position is one product T_i [W_Q | W_K | W_V W_O | M] (``token_maps``),
    and its gradient one product back; without W_pos both positions share one table, and with
    it their tables are stacked [T0; T1] (position 0's Q and L are then computed and not used).
    """

    def __init__(self, params: Mapping[str, torch.Tensor]) -> None:
        self.p = params
        self.d = params["W_E"].shape[-1]
        self.width = params["W_in"].shape[-1]
        self.scale = self.attention_scale(self.d)
        self.vocab = params["W_E"].shape[-2]
        if "W_pos" in params:  # [K, 2 vocab, d]: position 0's table, then position 1's
            self.tables = torch.cat([params["W_E"] + params["W_pos"][:, 0:1],
                                     params["W_E"] + params["W_pos"][:, 1:2]], dim=1)
        else:
            self.tables = params["W_E"]
        self.shared = "W_pos" not in params
        self.native = native.usable(self.tables)
        # forward, loss and backward in one call of the kernels (one table, no biases)
        self.whole_pass_native = (self.native and self.shared and "b_in" not in params
                                  and native.blas_available())
        d = self.d
        self.value_out = torch.bmm(params["W_V"], params["W_O"])
        self.token_maps = torch.cat([params["W_Q"], params["W_K"], self.value_out,
                                     params["W_in"], params["W_U"]], dim=-1)  # [K, d, 3d+m+C]
        self.maps = self.token_maps[..., 3 * d:]  # M = [W_in | W_U]
        products = self.products = torch.bmm(self.tables, self.token_maps)  # [K, P V, 3d+m+C]
        self.g = products[..., 2 * d:3 * d]
        self.f = torch.bmm(self.g, self.maps)  # F_i stacked like the tables
        last = products[:, -self.vocab:]  # position 1's rows
        first = products[:, :self.vocab]
        self.query, self.l1 = last[..., :d], last[..., 3 * d:]
        self.k0, self.k1 = first[..., d:2 * d], last[..., d:2 * d]
        self.f0, self.f1 = self.f[:, :self.vocab], self.f[:, -self.vocab:]
        self.s0 = torch.bmm(self.query, self.k0.transpose(1, 2))  # [K, vocab, vocab]
        self.s1 = (self.query * self.k1).sum(-1)  # [K, vocab]
        self.hidden_logits = torch.bmm(params["W_out"], params["W_U"])  # [K, m, C]

    @staticmethod
    def attention_scale(width: int) -> float:
        """1 / sqrt(d_head), the attention scores' scale (one head, as wide as the embedding)."""
        return 1.0 / math.sqrt(width)

    def as_tensors(self) -> dict[str, torch.Tensor]:
        """The tables ``native.transformer_loss_and_grads`` reads, by name."""
        return {name: getattr(self, name) for name in native.TRANSFORMER_TABLES}

    def forward(self, inputs: torch.Tensor) -> _Examples:
        """Everything the logits of ``inputs`` [N, 2] need, logits [K, N, C].

        With w1 = 1 - w0 the mixed rows are L[b] + w0 F0[a] + w1 F1[b] = (L + F1)[b] +
        w0 (F0[a] - F1[b]): fewer passes over [N, m + C] than the three terms."""
        plus = self.l1 + self.f1
        b_in = self.p.get("b_in")
        if self.native:
            first, hidden, direct = native.token_rows_forward(
                plus, self.f0, self.f1, self.s0, self.s1, b_in, self.scale, self.width, inputs)
        else:
            first, hidden, direct = self._rows_forward(plus, b_in, inputs[:, 0], inputs[:, 1])
        if "b_out" in self.p:
            direct = direct + torch.bmm(self.p["b_out"][:, None], self.p["W_U"])
        logits = direct.baddbmm_(hidden, self.hidden_logits)  # [K, N, C], in direct's memory
        return _Examples(inputs, first, hidden, logits)

    def _rows_forward(self, plus: torch.Tensor, b_in: torch.Tensor | None, a: torch.Tensor,
                      b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``native.token_rows_forward`` by PyTorch operations (another device, float64)."""
        k_count = self.s1.shape[0]
        # w0 = softmax(s0, s1)[0] = 1 / (1 + exp(s1 - s0)), by exp, not sigmoid: torch's
        # sigmoid rounds a tensor's tail elements differently, which would make a member's
        # numbers depend on the cohort around it; beyond exp(80) w0 < 1e-34 is as good as 0
        ratio = (self.s1[:, b] - self.s0.reshape(k_count, -1)[:, b * self.vocab + a]).mul_(
            self.scale).clamp_(max=80.0).exp()
        first = torch.reciprocal(ratio + 1.0)
        mixed = torch.addcmul(gather_rows(plus, b), first[..., None], self._diff(a, b))
        pre = mixed[..., :self.width]
        if b_in is not None:
            pre = pre + b_in[:, None]
        return first, torch.relu(pre), mixed[..., self.width:]

    def _diff(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """F0[a] - F1[b] [K, N, m + C]."""
        return gather_rows(self.f0, a).sub_(gather_rows(self.f1, b))

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """[K, N, C] logits of ``inputs`` [N, 2]."""
        return self.forward(inputs).logits

    def backward(self, ex: _Examples, d_logits: torch.Tensor,
                 out: Params | None = None) -> Params:
        """Gradients of every parameter given d loss / d logits [K, N, C], in new tensors or
        written into ``out`` (contiguous, one per parameter)."""
        p, d = self.p, self.d
        d_hidden_logits = product_transposed(d_logits.transpose(1, 2), ex.hidden)  # [K, m, C]
        d_hidden = torch.bmm(d_logits, self.hidden_logits.transpose(1, 2).contiguous())
        if self.native:
            rows = native.token_rows_backward(self.f0, self.f1, ex.first, ex.hidden, d_hidden,
                                              d_logits, self.scale, ex.pairs, self.shared,
                                              "b_in" in p)
        else:
            rows = self._rows_backward(ex, d_hidden, d_logits)
        # the tables' gradients, stacked like the tables (shared: one table, both positions)
        d_l1, d_s1 = rows["plus"], rows["s1"][..., None]
        d_f = rows["f0"] if self.shared else torch.cat([rows["f0"], rows["f1"]], dim=1)
        d_f[:, -self.vocab:] += d_l1  # plus = L1 + F1
        d_query = torch.baddbmm(d_s1 * self.k1, rows["s0"], self.k0)
        d_k0 = torch.bmm(rows["s0"].transpose(1, 2), self.query)
        d_k1 = d_s1 * self.query
        d_g = torch.bmm(d_f, self.maps.transpose(1, 2))
        if self.shared:
            d_products = torch.cat([d_query, d_k0 + d_k1, d_g, d_l1], dim=-1)
        else:
            zeros = torch.zeros_like(d_query)
            d_products = torch.cat([
                torch.cat([zeros, d_k0, d_g[:, :self.vocab], torch.zeros_like(d_l1)], dim=-1),
                torch.cat([d_query, d_k1, d_g[:, self.vocab:], d_l1], dim=-1)], dim=1)
        d_token_maps = torch.bmm(self.tables.transpose(1, 2), d_products)  # d [Q | K | V O | M]
        d_value_out = d_token_maps[..., 2 * d:3 * d]
        d_maps = torch.baddbmm(d_token_maps[..., 3 * d:], self.g.transpose(1, 2), d_f)
        m = self.width
        out = {n: torch.empty_like(t) for n, t in p.items()} if out is None else out
        if self.shared:
            torch.bmm(d_products, self.token_maps.transpose(1, 2), out=out["W_E"])
        else:
            d_tables = torch.bmm(d_products, self.token_maps.transpose(1, 2))
            torch.add(d_tables[:, :self.vocab], d_tables[:, self.vocab:], out=out["W_E"])
            torch.stack([d_tables[:, :self.vocab].sum(1), d_tables[:, self.vocab:].sum(1)],
                        dim=1, out=out["W_pos"])
        out["W_Q"].copy_(d_token_maps[..., :d])
        out["W_K"].copy_(d_token_maps[..., d:2 * d])
        torch.bmm(d_value_out, p["W_O"].transpose(1, 2), out=out["W_V"])
        torch.bmm(p["W_V"].transpose(1, 2), d_value_out, out=out["W_O"])
        out["W_in"].copy_(d_maps[..., :m])
        torch.bmm(d_hidden_logits, p["W_U"].transpose(1, 2), out=out["W_out"])
        torch.baddbmm(d_maps[..., m:], p["W_out"].transpose(1, 2), d_hidden_logits,
                      out=out["W_U"])
        if "b_in" in p:
            out["b_in"].copy_(rows["b_in"])
        if "b_out" in p:
            d_logit_sum = d_logits.sum(1, keepdim=True)  # [K, 1, C]
            out["b_out"].copy_(torch.bmm(d_logit_sum, p["W_U"].transpose(1, 2))[:, 0])
            out["W_U"] += p["b_out"][:, :, None] * d_logit_sum
        return out

    def _rows_backward(self, ex: _Examples, d_hidden: torch.Tensor,
                       d_logits: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """``native.token_rows_backward`` by PyTorch operations (another device, float64)."""
        vocab, k_count = self.vocab, d_logits.shape[0]
        a, b = ex.pairs[:, 0], ex.pairs[:, 1]
        d_pre = torch.ops.aten.threshold_backward(d_hidden, ex.hidden, 0)
        d_mixed = torch.cat([d_pre, d_logits], dim=-1)  # [K, N, m + C]
        # the two-way softmax: d s0 = w0 w1 dw0 / sqrt(d) (w1 = 1 - w0), d s1 = -d s0
        d_s0 = (d_mixed * self._diff(a, b)).sum(-1).mul_(
            ex.first * (1.0 - ex.first)).mul_(self.scale)
        d_diff = ex.first[..., None] * d_mixed
        d_f0 = scatter_rows(a, d_diff, vocab)
        d_f1 = d_f0 if self.shared else torch.zeros_like(d_f0)
        scatter_rows(b, d_diff, vocab, into=d_f1, alpha=-1.0)
        d_scores0 = scatter_rows(b * vocab + a, d_s0[..., None], vocab * vocab)
        return {"plus": scatter_rows(b, d_mixed, vocab), "f0": d_f0, "f1": d_f1,
                "s0": d_scores0.view(k_count, vocab, vocab),
                "s1": scatter_rows(b, -d_s0[..., None], vocab)[..., 0],
                "b_in": d_pre.sum(1) if "b_in" in self.p else None}
