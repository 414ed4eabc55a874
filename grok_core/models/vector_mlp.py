"""The MLPs of the feature-vector tasks (digits, MNIST, polynomial, parity), each task's own
widths, with a hand-written backward."""
from __future__ import annotations

from typing import Mapping

import torch

from ..config import ModelConfig
from .cohort import CohortModel, Params, ParamSpec, apply_masks, masked_gradients
from .losses import output_gradient


# Each vector task's reference MLP: hidden widths and whether its layers have biases.
VECTOR_MLP_LAYOUTS = {
    "digits": ((200, 200), True),      # Omnigrok's MNIST MLP, 784 (64) -> 200 -> 200 -> 10
    "mnist": ((200, 200), True),
    "polynomial": ((40, 48, 500), False),  # the authors' 40 -> 40 -> 48 -> 500 -> 1, no biases
    "parity": ((1000,), True),         # one hidden ReLU layer of width 1000
}


class VectorMLP(CohortModel):
    """The MLP of feature-vector tasks: x -> phi(x W1 + b1) -> ... -> . W_last + b_last, with
    the task's hidden widths (``VECTOR_MLP_LAYOUTS``; ``model.d_hidden`` makes every hidden
    layer that wide, ``model.hidden_layers`` sets how many) and biases if the task's reference
    has them; phi is ReLU or (``model.activation=quadratic``) h + h^2 / 2. Weights
    N(0, (kappa / sqrt(fan_in))^2) and prunable; biases zero and never pruned."""

    embedding = ""  # no embedding table: the all-ones input is a vector of ones

    def __init__(self, config: ModelConfig, features: int, classes: int,
                 loss: str = "cross_entropy", task: str = "digits") -> None:
        super().__init__(config, features, classes, loss)
        widths, self.biases = VECTOR_MLP_LAYOUTS[task]
        self.quadratic = config.activation == "quadratic"
        if config.d_hidden or config.hidden_layers:
            widths = (config.d_hidden or max(widths),) * (config.hidden_layers or len(widths))
        sizes = (features, *widths, classes)
        self.layers = len(sizes) - 1
        self.specs = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            self.specs[f"W{layer}"] = ParamSpec((fan_in, fan_out), fan_in, True)
            if self.biases:
                self.specs[f"b{layer}"] = ParamSpec((fan_out,), None, False)

    @classmethod
    def build(cls, config: ModelConfig, vocab: int, classes: int,
              loss: str = "cross_entropy", task: str = "digits") -> "VectorMLP":
        """The MLP of ``task`` (its widths and biases) on ``vocab`` input features."""
        return cls(config, vocab, classes, loss, task)

    def logits(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """[K, N, classes] outputs of ``inputs`` [N, features]."""
        return self._forward(params, inputs)[0]

    def _forward(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor
                 ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor | None],
                            list[torch.Tensor], bool]:
        """(outputs [K, N, classes], each layer's input, each hidden layer's pre-activation
        (quadratic activation only, else None), each layer's weight, lone). A lone
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
        pre_activations: list[torch.Tensor | None] = []  # kept only for phi'(h) = 1 + h
        for layer, weight, bias in zip(layers, weights, biases):
            hidden = layer_inputs[-1]
            if bias is None:
                out = hidden.mm(weight) if lone else torch.bmm(hidden, weight)
            else:
                out = torch.addmm(bias, hidden, weight) if lone else torch.baddbmm(
                    bias, hidden, weight)
            if layer < self.layers:
                pre_activations.append(out if self.quadratic else None)
                layer_inputs.append(self._activate(out))
        return (out.unsqueeze(0) if lone else out), layer_inputs, pre_activations, weights, lone

    def _activate(self, pre: torch.Tensor) -> torch.Tensor:
        """ReLU, or Kumar et al.'s phi(h) = h + h^2 / 2."""
        return pre + 0.5 * pre * pre if self.quadratic else torch.relu(pre)

    def _activation_backward(self, grad: torch.Tensor, activated: torch.Tensor,
                             pre: torch.Tensor | None) -> torch.Tensor:
        """The gradient through the activation: ReLU' (1 where the output is positive), or
        phi'(h) = 1 + h from the pre-activation ``pre``."""
        if self.quadratic:
            return grad * (1.0 + pre)
        return torch.ops.aten.threshold_backward(grad, activated, 0)

    @property
    def needs_autograd(self) -> bool:
        """Only a hinge over more than two classes takes the generic (autograd) path."""
        return self.loss == "hinge" and self.classes > 2

    def loss_and_grads(self, params: Mapping[str, torch.Tensor],
                       masks: Mapping[str, torch.Tensor] | None, inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype = torch.float32,
                       with_grads: bool = True, with_loss: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, Params | None]:
        """Hand-written forward and backward (no autograd graph: at small batches the graph's
        bookkeeping costs more than the arithmetic); gradients of masked tensors are
        multiplied by their masks. Same values as the generic autograd path (a test compares
        them). A hinge over more than two classes takes the generic path."""
        if not with_grads or self.needs_autograd:
            return super().loss_and_grads(params, masks, inputs, labels, loss_dtype, with_grads)
        logits, layer_inputs, pre_activations, weights, lone = self._forward(
            apply_masks(params, masks), inputs)
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
                grad = self._activation_backward(grad, hidden, pre_activations[layer - 2])
        if lone:
            grads = {name: g.unsqueeze(0) for name, g in grads.items()}
        masked_gradients(grads, masks)
        return loss, acc, {name: grads[name] for name in params}

    def ones_input(self, params: Mapping[str, torch.Tensor]
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The parameters as they are and one input of ones."""
        return dict(params), torch.ones(1, self.vocab, dtype=params["W1"].dtype)
