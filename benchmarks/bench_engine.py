"""Speed of the engine against a naive reference, on the paper's dense MLP run.

(a) naive: an nn.Module of eq. (1) with one-hot batch matmuls, torch.optim.AdamW, test accuracy
    every step (how the straightforward script is written);
(b) this engine, one member (K=1);
(c) this engine, a cohort of K=8 (member-steps per second).
All three run in this one process on one thread, side by side, each for the same number of steps
of p=67, full batch, wd 1. Prints steps/s and the ratios (targets: b/a >= 5, c/a >= 8).

    OMP_NUM_THREADS=1 python benchmarks/bench_engine.py [--steps 600] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from grok_core.config import ExperimentConfig
from grok_core.tasks import build_dataset
from grok_core.training import MemberSpec, train_cohort


class NaiveMLP(nn.Module):
    """Eq. (1) written the straightforward way."""

    def __init__(self, p: int = 67, d_emb: int = 500, hidden: int = 48, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.p = p
        self.W_emb = nn.Parameter(torch.randn(p, d_emb, generator=g) / p ** 0.5)
        self.W_in = nn.Parameter(torch.randn(d_emb, hidden, generator=g) / d_emb ** 0.5)
        self.W_out = nn.Parameter(torch.randn(hidden, d_emb, generator=g) / hidden ** 0.5)
        self.W_unemb = nn.Parameter(torch.randn(d_emb, p, generator=g) / d_emb ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e_a = F.one_hot(x[:, 0], self.p).float() @ self.W_emb
        e_b = F.one_hot(x[:, 1], self.p).float() @ self.W_emb
        return torch.relu((e_a + e_b) @ self.W_in) @ self.W_out @ self.W_unemb


def naive_steps_per_second(steps: int) -> float:
    data = build_dataset(ExperimentConfig().task)
    model = NaiveMLP()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(data.train.inputs), data.train.labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            (model(data.test.inputs).argmax(-1) == data.test.labels).float().mean().item()
    return steps / (time.perf_counter() - start)


def engine_member_steps_per_second(steps: int, members: int) -> float:
    config = ExperimentConfig().with_overrides([f"train.steps={steps}"])
    start = time.perf_counter()
    train_cohort(config, [MemberSpec(seed=s) for s in range(members)])
    return steps * members / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, list[float]] = {"naive": [], "engine K=1": [], "engine K=8": []}
    for _ in range(args.repeats):  # interleaved, so machine noise hits all three alike
        results["naive"].append(naive_steps_per_second(args.steps))
        results["engine K=1"].append(engine_member_steps_per_second(args.steps, 1))
        results["engine K=8"].append(engine_member_steps_per_second(args.steps, 8))
    median = {name: statistics.median(v) for name, v in results.items()}
    for name, value in median.items():
        print(f"{name:12s} {value:9.1f} member-steps/s (median of {args.repeats})")
    print(f"ratio engine K=1 / naive: {median['engine K=1'] / median['naive']:.1f}x (target >= 5)")
    print(f"ratio engine K=8 / naive: {median['engine K=8'] / median['naive']:.1f}x (target >= 8)")


if __name__ == "__main__":
    main()
