"""The authors' training step (gouki510/Grokking-Tickets, master: ``train.py``, ``model.py``,
``utils.py``), rewritten here as the speed anchor of ``bench_engine.py``: the same modules and
the same per-step work, on the CPU.

Per step their loop (1) runs the model on the training pairs and on the test pairs, both with an
autograd graph, each time rebuilding the labels in Python from the pair list and the index tensor
from that list; (2) takes the cross-entropy in float64, the accuracy and the mean probability of
the label; (3) adds ``lp_alpha * lp_reg`` (computed whatever alpha is); (4) reads L1 / L2 norms of
every weight and masked weight from the state dict; (5) logs to wandb, calls backward and
``torch.optim.AdamW.step``. Only the wandb call is left out (network I/O), and torcheval's
``multiclass_accuracy`` is replaced by the same argmax comparison. The MLP is their ``OnlyMLP``
(eq. 1; masks as buffers), the transformer their ``Transformer`` at the ``trans_nob`` reading
(one layer, one head, no W_pos, no MLP biases, no LayerNorm).
"""
from __future__ import annotations

import math
import random
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def pairs_split(p: int = 67, fraction: float = 0.4, seed: int = 0):
    """Their ``gen_train_test`` with symmetric input: pairs i <= j, shuffled, cut at fraction."""
    pairs = [(i, j) for i in range(p) for j in range(p) if i <= j]
    random.Random(seed).shuffle(pairs)
    cut = int(fraction * len(pairs))
    return pairs[:cut], pairs[cut:]


class _Masked(nn.Module):
    """A weight with a keep-mask buffer, as each of their layers holds one."""

    def __init__(self, shape: tuple[int, ...], std: float) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(shape) * std)
        self.register_buffer("weight_mask", torch.ones(shape))

    def masked(self) -> torch.Tensor:
        return self.W * self.weight_mask


class _Identity(nn.Module):
    """Their HookPoint with no hook attached: a module call that returns its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class AuthorsMLP(nn.Module):
    """OnlyMLP: embed W_E[:, x] per token, in-projection, sum of the two tokens, ReLU,
    out-projection, unembed."""

    def __init__(self, p: int = 67, d_emb: int = 500, d_model: int = 48) -> None:
        super().__init__()
        self.embed = _Masked((d_emb, p), 1 / math.sqrt(p))
        self.inproj = _Masked((d_model, d_emb), 1 / math.sqrt(d_emb))
        self.outproj = _Masked((d_emb, d_model), 1 / math.sqrt(d_model))
        self.unembed = _Masked((d_emb, p), 1 / math.sqrt(d_emb))

    def forward(self, x) -> torch.Tensor:
        emb = torch.einsum("dbp -> bpd", self.embed.masked()[:, x])
        hidden = F.relu((emb @ self.inproj.masked().T).sum(dim=1))
        return (hidden @ self.outproj.masked().T) @ self.unembed.masked()


class AuthorsTransformer(nn.Module):
    """Transformer (trans_nob): one block of one-head causal attention and a ReLU MLP, each
    added to the residual stream, unembedding at the last position."""

    def __init__(self, p: int = 67, d_model: int = 128, d_mlp: int = 128) -> None:
        super().__init__()
        std = 1 / math.sqrt(d_model)
        self.embed = _Masked((d_model, p), 1 / math.sqrt(p))
        self.W_K, self.W_Q, self.W_V = (_Masked((1, d_model, d_model), std) for _ in range(3))
        self.W_O = _Masked((d_model, d_model), std)
        self.W_in, self.W_out = _Masked((d_mlp, d_model), std), _Masked((d_model, d_mlp), std)
        self.unembed = _Masked((d_model, p), std)
        self.register_buffer("causal", torch.tril(torch.ones(2, 2)))
        self.hooks = nn.ModuleList(_Identity() for _ in range(7))
        self.d_head = d_model

    def forward(self, x) -> torch.Tensor:
        hook = iter(self.hooks)
        resid = next(hook)(torch.einsum("dbp -> bpd", self.embed.masked()[:, x]))
        k = torch.einsum("ihd,bpd->biph", self.W_K.masked(), resid)
        q = torch.einsum("ihd,bpd->biph", self.W_Q.masked(), resid)
        v = torch.einsum("ihd,bpd->biph", self.W_V.masked(), resid)
        scores = torch.einsum("biph,biqh->biqp", k, q)
        scores = torch.tril(scores) - 1e10 * (1 - self.causal)
        attn = F.softmax(scores / math.sqrt(self.d_head), dim=-1)
        z = torch.einsum("biph,biqp->biqh", v, attn)
        z = z.permute(0, 2, 1, 3).reshape(z.shape[0], z.shape[2], -1)
        attn_out = next(hook)(torch.einsum("df,bqf->bqd", self.W_O.masked(), z))
        resid = next(hook)(resid + attn_out)
        pre = next(hook)(torch.einsum("md,bpd->bpm", self.W_in.masked(), resid))
        post = next(hook)(F.relu(pre))
        mlp_out = next(hook)(torch.einsum("dm,bpm->bpd", self.W_out.masked(), post))
        resid = next(hook)(resid + mlp_out)
        return (resid @ self.unembed.masked())[:, -1, :].unsqueeze(1)


def _full_loss(model: nn.Module, pairs, p: int, last_position: bool):
    """Their full_loss / full_loss_mlp: float64 cross-entropy, accuracy, mean label probability."""
    logits = model(pairs)
    if last_position:
        logits = logits[:, -1]
    prob = F.softmax(logits, dim=1)
    labels = torch.tensor([(i + j) % p for i, j in pairs])
    accuracy = (logits.argmax(-1) == labels).float().mean().item()
    logprobs = F.log_softmax(logits.to(torch.float64), dim=-1)
    loss = -torch.gather(logprobs, index=labels[:, None], dim=-1).mean()
    return loss, accuracy, torch.gather(prob, index=labels[:, None], dim=-1).mean()


def _lp_reg(model: nn.Module, order: int = 1) -> torch.Tensor:
    total = torch.tensor(0.0, requires_grad=True)
    for weight in model.parameters():
        total = total + torch.norm(weight, p=order)
    return total / len(list(model.parameters()))


def _weight_norms(model: nn.Module) -> tuple[float, float, float, float]:
    """Their get_weight_norm: L1 / L2 of every weight and masked weight, from the state dict."""
    state = model.state_dict()
    masks = [k for k in state if "mask" in k and k != "causal"]
    weights = [k for k in state if "mask" not in k and k != "causal"]
    l1 = l2 = l1m = l2m = 0.0
    for mask_key, key in zip(masks, weights):
        mask, weight = state[mask_key].detach().cpu(), state[key].detach().cpu()
        l2m += torch.norm(weight * mask, 2)
        l2 += torch.norm(weight, 2)
        l1m += torch.norm(weight * mask, 1)
        l1 += torch.norm(weight, 1)
    n = len(weights)
    return l1.item() / n, l2.item() / n, l1m.item() / n, l2m.item() / n


def authors_steps_per_second(model_name: str, steps: int, weight_decay: float = 1.0,
                             lp_alpha: float = 0.0) -> float:
    """Steps per second of their loop on p=67 (fraction 0.4, pairs i <= j), one process."""
    torch.manual_seed(0)  # their code seeds torch with 0 at import
    model = AuthorsMLP() if model_name == "mlp" else AuthorsTransformer()
    last_position = model_name != "mlp"
    train, test = pairs_split()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=weight_decay,
                                  betas=(0.9, 0.98))
    start = time.perf_counter()
    for _ in range(steps):
        train_loss, train_acc, _ = _full_loss(model, train, 67, last_position)
        train_loss = train_loss + lp_alpha * _lp_reg(model)
        test_loss, test_acc, _ = _full_loss(model, test, 67, last_position)
        _ = (train_loss.item(), test_loss.item(), train_acc, test_acc)  # the progress bar
        _weight_norms(model)
        train_loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return steps / (time.perf_counter() - start)
