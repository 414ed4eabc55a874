"""The one-layer, one-head transformer of App. B.2 on token pairs (modular arithmetic)."""
from __future__ import annotations

import math
from typing import Mapping

import torch

from ..config import ModelConfig
from .cohort import CohortModel, ParamSpec


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


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[:, index] for a [K, rows, d] table, as one index_select on a [K * rows, d] view
    (its backward is a fast scatter along dim 0; along dim 1 it is several times slower)."""
    k_count, rows, width = table.shape
    offsets = torch.arange(k_count, device=index.device)[:, None] * rows
    flat_index = (index[None] + offsets).reshape(-1)
    return table.reshape(k_count * rows, width).index_select(0, flat_index).view(
        k_count, -1, width)
