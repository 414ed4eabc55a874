"""Cost of an edge-popup step against a dense step of the same network (issue 9: <= 2x).

Trains the paper's MLP (p=67) from the same weights for the same number of steps as (a) a dense
run, (b) edge-popup with frozen weights ("EP w/o WD": score tensors, a per-tensor top-k selection
and straight-through gradients each step) and (c) edge-popup with weights and scores trained
("EP w/ WD"), at K=1 and K=8, side by side in one process on one thread, interleaved over
repeats. Prints member-steps/s (median) and the ratio of each edge-popup step to a dense step.

    OMP_NUM_THREADS=1 python benchmarks/bench_edge_popup.py [--steps 1000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from grok_core.config import ExperimentConfig
from grok_core.edge_popup import initial_scores
from grok_core.recipes import model_for
from grok_core.training import MemberSpec, train_cohort

VARIANTS = {"dense": "wd", "ep (weights frozen)": "ep", "ep_wd (both trained)": "ep_wd"}


def member_steps_per_second(variant: str, members: int, steps: int) -> float:
    config = ExperimentConfig().with_overrides([
        "recipe=edge_popup", f"edge_popup.variant={variant}", "optim.lr=0.01",
        f"train.steps={steps}", "train.eval_every=10"])
    model = model_for(config)
    specs = []
    for seed in range(members):
        init = model.init_member(seed)
        if variant != "wd":
            init = {**init, **initial_scores(model, seed)}
        specs.append(MemberSpec(seed=seed, init=init, labels={"pruning_rate": 0.6}))
    start = time.perf_counter()
    train_cohort(config, specs)
    return steps * members / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)  # past the early phase
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for members in (1, 8):
        results: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):  # interleaved: machine noise hits every variant alike
            for name, variant in VARIANTS.items():
                results[name].append(member_steps_per_second(variant, members, args.steps))
        median = {name: statistics.median(v) for name, v in results.items()}
        for name, value in median.items():
            ratio = median["dense"] / value
            print(f"K={members} {name:22s} {value:8.1f} member-steps/s   step cost "
                  f"{ratio:4.2f}x dense (target <= 2)")


if __name__ == "__main__":
    main()
