"""The MLP of eq. (1) on token pairs (modular arithmetic), with an exact hand-written backward."""
from __future__ import annotations

from typing import Mapping

import torch

from .. import native
from ..config import ModelConfig
from .cohort import (CohortModel, Params, ParamSpec, TrainingPass, apply_masks,
                     masked_gradients, masked_in_place, product_transposed, scatter_rows)
from .losses import transposed_cross_entropy


class MLP(CohortModel):
    """Eq. (1): softmax(ReLU((E_a + E_b) W_in) W_out W_unemb), no biases.

    Forward uses an exact reassociation: (E_a + E_b) W_in = (W_emb W_in)[a] + (W_emb W_in)[b],
    and W_out W_unemb is one [hidden, classes] matrix. The product of two small matrices per
    step replaces the [N, d_emb] activations of the naive form (see ``naive_logits``).
    """

    embedding = "W_emb"
    losses_by_hand = ("cross_entropy",)

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
                       with_grads: bool = True, with_loss: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, Params | None]:
        """Exact hand-written forward and backward of eq. (1) (no autograd graph).

        On a CPU the loss is the compiled kernels' (as the transformer's), and with PyTorch's
        BLAS the whole pass is one call of them (``native.mlp_loss_and_grads``, the same bits);
        elsewhere logits are formed transposed, [K, classes, N], so the softmax reductions run
        along contiguous memory. Gradients of masked tensors are multiplied by their masks.
        Another loss than cross-entropy takes the generic (autograd) path.
        """
        if self.needs_autograd:
            return super().loss_and_grads(params, masks, inputs, labels, loss_dtype, with_grads)
        eff = apply_masks(params, masks)
        w_emb, w_in, w_out, w_unemb = eff["W_emb"], eff["W_in"], eff["W_out"], eff["W_unemb"]
        if (loss_dtype == torch.float64 and native.usable(w_emb, w_in, w_out, w_unemb)
                and native.blas_available()):  # all of the below in one call, the same bits
            loss, acc, grads = native.mlp_loss_and_grads(eff, inputs, labels, with_grads,
                                                         with_loss)
            return loss, acc, grads if grads is None else masked_gradients(grads, masks)
        token_hidden = torch.bmm(w_emb, w_in)  # [K, vocab, h]
        hidden_logits = torch.bmm(w_out, w_unemb)  # [K, h, classes]
        by_kernels = native.usable(token_hidden)
        if by_kernels:  # the same bits as the PyTorch lines below, in one pass
            hidden = native.pair_relu_forward(token_hidden, inputs)
        else:
            pre = (token_hidden.index_select(1, inputs[:, 0])
                   + token_hidden.index_select(1, inputs[:, 1]))  # [K, N, h]
            hidden = torch.relu(pre)
        if by_kernels and loss_dtype == torch.float64:  # rows: each example's classes at hand
            logits = torch.bmm(hidden, hidden_logits)  # [K, N, C]
            loss, acc, d_logits = native.cross_entropy_rows(logits, labels, with_grads,
                                                            with_loss)
            d_logits_t = None if d_logits is None else d_logits.transpose(1, 2)
        else:  # [K, C, N], so that PyTorch's softmax reductions run along contiguous memory
            logits_t = torch.bmm(hidden_logits.transpose(1, 2), hidden.transpose(1, 2))
            loss, acc, d_logits_t = transposed_cross_entropy(logits_t, labels, loss_dtype,
                                                             with_grads)
        if not with_grads:
            return loss, acc, None
        d_hidden_logits = product_transposed(d_logits_t, hidden)  # [K, h, C]
        d_hidden = torch.bmm(d_logits_t.transpose(1, 2), hidden_logits.transpose(1, 2))
        backward = native.pair_relu_backward if by_kernels else _pair_relu_backward
        d_token_hidden = backward(hidden, d_hidden, inputs, token_hidden.shape[1])
        grads = {
            "W_emb": torch.bmm(d_token_hidden, w_in.transpose(1, 2)),
            "W_in": torch.bmm(w_emb.transpose(1, 2), d_token_hidden),
            "W_out": torch.bmm(d_hidden_logits, w_unemb.transpose(1, 2)),
            "W_unemb": torch.bmm(w_out.transpose(1, 2), d_hidden_logits),
        }
        return loss, acc, masked_gradients(grads, masks)

    def training_pass(self, params: Mapping[str, torch.Tensor],
                      masks: Mapping[str, torch.Tensor] | None,
                      loss_dtype: torch.dtype) -> TrainingPass | None:
        """``loss_and_grads``' one call of the kernels (``native.MLPPass``) bound to these
        weights: the masked ones refreshed in their own tensors at each call (W * m, as
        ``apply_masks``), the gradients masked in place. None off that path (no BLAS, another
        device or loss, a weight not contiguous)."""
        weights = [params[name] for name in native.MLP_WEIGHTS]
        if self.needs_autograd or loss_dtype != torch.float64 or not native.bindable(*weights):
            return None
        effective, refresh = masked_in_place(params, masks)
        whole_pass = native.MLPPass(effective)

        def run(inputs: torch.Tensor, labels: torch.Tensor, with_loss: bool
                ) -> tuple[torch.Tensor, torch.Tensor, Params]:
            refresh()
            loss, accuracy, grads = whole_pass(inputs, labels, with_loss)
            return loss, accuracy, masked_gradients(grads, masks)
        return run

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


def _pair_relu_backward(hidden: torch.Tensor, d_hidden: torch.Tensor, pairs: torch.Tensor,
                        vocab: int) -> torch.Tensor:
    """``native.pair_relu_backward`` by PyTorch operations (another device, float64)."""
    d_pre = torch.ops.aten.threshold_backward(d_hidden, hidden, 0)  # ReLU'; fast on CPU
    d_token_hidden = scatter_rows(pairs[:, 0], d_pre, vocab)
    return scatter_rows(pairs[:, 1], d_pre, vocab, into=d_token_hidden)
