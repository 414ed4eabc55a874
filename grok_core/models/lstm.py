"""A stacked ("cohort") LSTM classifier: the sentiment model of App. J.

token ids [N, L] -> embedding (``model.d_emb``, default 64) -> two-layer LSTM (``model.d_hidden``,
default 128) -> linear map of the top layer's hidden state at the last time step to the class
logits. Inputs are padded at the front with token 0 (Keras style), so the last step is real text.

Each member runs PyTorch's own LSTM kernel (``torch.lstm``, what ``nn.LSTM`` calls) on its slice
of the stacked parameters, so a member costs what ``nn.LSTM`` costs, autograd reaches every
tensor, and member k of a cohort computes exactly what a solo run of member k computes. Weight
layout and gate order (i, f, g, o) are ``nn.LSTM``'s, so its weights copy over 1:1.
``logits_differentiable_twice`` is the same network as an explicit cell loop of tensor ops.
"""
from __future__ import annotations

from typing import Mapping

import torch

from ..config import DEFAULT_WIDTHS, ModelConfig
from .cohort import CohortModel, ParamSpec

LAYERS = 2
# per layer, in the order torch.lstm reads its flat weight list (nn.LSTM's _flat_weights)
LAYER_TENSORS = ("W_ih", "W_hh", "b_ih", "b_hh")


class LSTMClassifier(CohortModel):
    """Embedding -> 2-layer LSTM -> linear on the last step's top hidden state (App. J)."""

    embedding = "embedding"

    def __init__(self, config: ModelConfig, vocab: int, classes: int,
                 loss: str = "cross_entropy") -> None:
        super().__init__(config, vocab, classes, loss)
        default_emb, default_hidden = DEFAULT_WIDTHS["lstm"]  # whatever config.name says
        d, h = config.d_emb or default_emb, config.d_hidden or default_hidden
        self.emb_width, self.hidden_width = d, h
        # fan_in 1: the embedding starts N(0, kappa^2), as nn.Embedding's N(0, 1) at kappa = 1
        specs = {"embedding": ParamSpec((vocab, d), 1, True)}
        for layer in range(LAYERS):
            width_in = d if layer == 0 else h
            specs[f"W_ih{layer}"] = ParamSpec((4 * h, width_in), width_in, True)
            specs[f"W_hh{layer}"] = ParamSpec((4 * h, h), h, True)
            specs[f"b_ih{layer}"] = ParamSpec((4 * h,), None, False)
            specs[f"b_hh{layer}"] = ParamSpec((4 * h,), None, False)
        specs["W_out"] = ParamSpec((h, classes), h, True)
        specs["b_out"] = ParamSpec((classes,), None, False)
        self.specs = specs

    def logits(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """[K, N, classes] logits of ``inputs`` [N, L] of token ids (params already masked)."""
        members = params["embedding"].shape[0]
        return torch.stack([self._member_logits(params, k, inputs) for k in range(members)])

    def _member_logits(self, params: Mapping[str, torch.Tensor], k: int,
                       inputs: torch.Tensor) -> torch.Tensor:
        """Member k's [N, classes] logits through the fused kernel, on its own slices only (so
        its arithmetic does not depend on the other members)."""
        emb = torch.nn.functional.embedding(inputs, params["embedding"][k])  # [N, L, d]
        flat = [params[f"{kind}{layer}"][k] for layer in range(LAYERS) for kind in LAYER_TENSORS]
        zeros = emb.new_zeros(LAYERS, inputs.shape[0], self.hidden_width)
        # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
        # batch_first); h_n[-1] is the top layer's hidden state at the last step
        _, h_n, _ = torch.lstm(emb, (zeros, zeros), flat, True, LAYERS, 0.0, False, False, True)
        return torch.addmm(params["b_out"][k], h_n[-1], params["W_out"][k])

    def logits_differentiable_twice(self, params: Mapping[str, torch.Tensor],
                                    inputs: torch.Tensor) -> torch.Tensor:
        """``logits`` as an explicit cell loop of batched tensor ops over all members at once.

        Slower; every op has a double backward on every device (the fused kernel has none under
        cuDNN), so Hessian-vector products (GraSP) can go through it. Equal to ``logits`` up to
        float rounding.
        """
        members, batch = params["embedding"].shape[0], inputs.shape[0]
        offsets = torch.arange(members, device=inputs.device)[:, None, None] * self.vocab
        table = params["embedding"].reshape(members * self.vocab, -1)
        layer_in = table[inputs[None] + offsets]  # [K, N, L, d]
        for layer in range(LAYERS):
            w_ih, w_hh, b_ih, b_hh = (params[f"{kind}{layer}"] for kind in LAYER_TENSORS)
            # the input projection of every step in one matmul, as the CPU kernel does
            projected = torch.einsum("knld,kgd->knlg", layer_in, w_ih) + (b_ih + b_hh)[:, None,
                                                                                       None]
            h = layer_in.new_zeros(members, batch, self.hidden_width)
            c = torch.zeros_like(h)
            steps = []
            for t in range(inputs.shape[1]):
                gates = projected[:, :, t] + torch.bmm(h, w_hh.transpose(1, 2))
                i, f, g, o = gates.chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                steps.append(h)
            layer_in = torch.stack(steps, dim=2)
        return torch.baddbmm(params["b_out"][:, None], h, params["W_out"])

    def ones_input(self, params: Mapping[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(parameters, one input) giving the network's output on the all-ones input (SynFlow):
        one sequence of length one whose token's embedding is every embedding row summed."""
        table = self.embedding
        return {**params, table: params[table].sum(dim=-2, keepdim=True)}, torch.zeros(
            1, 1, dtype=torch.long)
