"""The losses of the cohort models, per member: cross-entropy, MSE, regression MSE with R^2,
hinge; their accuracies; and the gradient of each loss with respect to the logits (for the
hand-written backward passes).

Every function takes [K, N, C] logits (or [K, N, 1] outputs) and returns one value per member,
computed in ``loss_dtype`` where float32 would lose a confident prediction.
"""
from __future__ import annotations

import torch


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


def transposed_cross_entropy(logits_t: torch.Tensor, labels: torch.Tensor,
                              loss_dtype: torch.dtype, with_grads: bool
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Mean cross-entropy [K], accuracy [K] and d(sum of member losses)/d logits for
    [K, C, N] logits; same definitions as ``cross_entropy_and_accuracy``.

    The [K, C, N] passes run in the logits' dtype (float32); the two quantities in which float32
    loses a confident prediction run in ``loss_dtype``: the normaliser sum_j exp(z_j - max) =
    1 + tiny (so the loss log(1 + tiny) does not round to 0) and the label's gradient
    p_y - 1 = (e_y - total) / total (so it does not round to 0 either). With float64 this agrees
    with a float64 log-softmax to float32 precision in every entry (a test checks it) at a
    fraction of the cost of converting every logit to float64. (On a CPU, both models train
    on the compiled kernels' version of it, ``native.cross_entropy_rows``.)
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
