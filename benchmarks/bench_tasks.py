"""Speed of the feature-vector MLP (digits / MNIST) against a plain PyTorch loop of the same net.

(a) plain: ``nn.Sequential(Linear, ReLU, Linear, ReLU, Linear)`` with ``torch.optim.AdamW`` and
    ``nn.MSELoss`` against one-hot targets, full batch, test accuracy every 100 steps;
(b) this engine, one member (K=1); (c) a cohort of K=8 (member-steps per second).
Same data (the 1000 training digits), widths, init scale 8, lr 1e-3, wd 0.01, side by side on one
thread, interleaved over repeats; prints member-steps/s, the ratios, and achieved GFLOP/s
(6 x multiply-adds of the three layers per example: forward and backward).

    OMP_NUM_THREADS=1 python benchmarks/bench_tasks.py [--steps 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn

from grok_core.config import ExperimentConfig
from grok_core.tasks import build_dataset
from grok_core.training import MemberSpec, train_cohort

SETTINGS = ["task.name=digits", "model.init_scale=8", "train.loss=mse",
            "optim.weight_decay=0.01", "train.eval_every=100"]


def plain_steps_per_second(steps: int, width: int = 200) -> float:
    data = build_dataset(ExperimentConfig().with_overrides(SETTINGS).task)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                        nn.Linear(width, 10))
    with torch.no_grad():
        for layer in net[::2]:
            layer.weight.normal_(0, 8 / layer.in_features ** 0.5)
            layer.bias.zero_()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98))
    target = torch.nn.functional.one_hot(data.train.labels, 10).float()
    loss_fn = nn.MSELoss()
    start = time.perf_counter()
    for step in range(steps):
        loss = loss_fn(net(data.train.inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            with torch.no_grad():
                (net(data.test.inputs).argmax(-1) == data.test.labels).float().mean().item()
    return steps / (time.perf_counter() - start)


def engine_member_steps_per_second(steps: int, members: int) -> float:
    config = ExperimentConfig().with_overrides([*SETTINGS, f"train.steps={steps}"])
    start = time.perf_counter()
    train_cohort(config, [MemberSpec(seed=s) for s in range(members)])
    return steps * members / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, list[float]] = {"plain": [], "engine K=1": [], "engine K=8": []}
    for _ in range(args.repeats):  # interleaved, so machine noise hits all three alike
        results["plain"].append(plain_steps_per_second(args.steps))
        results["engine K=1"].append(engine_member_steps_per_second(args.steps, 1))
        results["engine K=8"].append(engine_member_steps_per_second(args.steps, 8))
    flops = 6 * 1000 * (64 * 200 + 200 * 200 + 200 * 10)  # per member-step
    median = {name: statistics.median(v) for name, v in results.items()}
    for name, value in median.items():
        print(f"{name:12s} {value:8.1f} member-steps/s  {value * flops / 1e9:5.1f} GFLOP/s "
              f"(median of {args.repeats})")
    for name in ("engine K=1", "engine K=8"):
        print(f"ratio {name} / plain: {median[name] / median['plain']:.2f}x (target >= 1)")


if __name__ == "__main__":
    main()
