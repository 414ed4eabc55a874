"""Speed of the cohort LSTM classifier (App. J) against plain PyTorch loops of the same net.

(a) plain: K independent ``nn.Embedding`` + ``nn.LSTM`` (2 layers) + ``nn.Linear`` models, each
    with its own ``torch.optim.AdamW`` and ``F.cross_entropy``;
(b) this engine: one cohort of K ``LSTMClassifier`` members (``logits`` inside
    ``CohortModel.loss_and_grads``, then ``CohortAdamW.step``).
Both at K=1 and K=8, same minibatch of random tokens, sizes, lr 1e-3 and wd 1, side by side on
one thread, interleaved over repeats; prints member-steps/s (median of the repeats), the ratio
engine / plain, and achieved GFLOP/s of the LSTM's matmuls.

    OMP_NUM_THREADS=1 python benchmarks/bench_lstm.py [--steps 20] [--repeats 3] [--seq-len 100]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn

from grok_core.config import ModelConfig
from grok_core.models import LSTMClassifier
from grok_core.optim import CohortAdamW


class PlainNet(nn.Module):
    """Embedding -> 2-layer LSTM -> Linear on the last step (the textbook form)."""

    def __init__(self, vocab: int, d_emb: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d_emb)
        self.lstm = nn.LSTM(d_emb, hidden, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(self.emb(inputs))[0][:, -1])


def make_batch(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, args.vocab, (args.batch, args.seq_len), generator=generator)
    return inputs, torch.randint(0, args.classes, (args.batch,), generator=generator)


def plain_member_steps_per_second(args: argparse.Namespace, members: int) -> float:
    inputs, labels = make_batch(args)
    torch.manual_seed(0)
    nets = [PlainNet(args.vocab, args.d_emb, args.hidden, args.classes) for _ in range(members)]
    optimizers = [torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1.0,
                                    betas=(0.9, 0.98)) for net in nets]
    start = time.perf_counter()
    for _ in range(args.steps):
        for net, optimizer in zip(nets, optimizers):
            loss = nn.functional.cross_entropy(net(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return args.steps * members / (time.perf_counter() - start)


def engine_member_steps_per_second(args: argparse.Namespace, members: int) -> float:
    inputs, labels = make_batch(args)
    model = LSTMClassifier(ModelConfig(d_emb=args.d_emb, d_hidden=args.hidden), args.vocab,
                           args.classes)
    params = model.init_cohort(range(members))
    optimizer = CohortAdamW(params, [1e-3] * members, [1.0] * members)
    start = time.perf_counter()
    for _ in range(args.steps):
        _, _, grads = model.loss_and_grads(params, None, inputs, labels)
        optimizer.step(grads)
    return args.steps * members / (time.perf_counter() - start)


def lstm_flops_per_member_step(args: argparse.Namespace) -> int:
    """Matmul FLOPs of the LSTM, forward + backward = 3 x forward. Forward, per layer, example
    and step: 2 * 4h * (d_in + h) (the input and recurrent gate products, 2 FLOPs per
    multiply-add), d_in = d_emb for layer 0 and h for layer 1."""
    h = args.hidden
    per_token = sum(2 * 4 * h * (d_in + h) for d_in in (args.d_emb, h))
    return 3 * per_token * args.batch * args.seq_len


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocab", type=int, default=1002)
    parser.add_argument("--d-emb", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {f"{kind} K={k}": (kind, k) for k in args.members for kind in ("plain", "engine")}
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so machine noise hits all alike
        for name, (kind, k) in runs.items():
            measure = plain_member_steps_per_second if kind == "plain" else \
                engine_member_steps_per_second
            results[name].append(measure(args, k))
    flops = lstm_flops_per_member_step(args)
    median = {name: statistics.median(v) for name, v in results.items()}
    for name, value in median.items():
        print(f"{name:12s} {value:8.2f} member-steps/s  {value * flops / 1e9:5.2f} GFLOP/s "
              f"(median of {args.repeats})")
    for k in args.members:
        ratio = median[f"engine K={k}"] / median[f"plain K={k}"]
        print(f"ratio engine / plain at K={k}: {ratio:.2f}x (target >= 1)")


if __name__ == "__main__":
    main()
