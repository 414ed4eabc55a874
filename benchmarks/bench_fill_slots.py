"""Two ways to use 2 CPUs for a cohort that would otherwise be one trial on one CPU.

The headline's dense runs (3 seeds of the paper's MLP, p=67) for a few thousand steps:
(a) one cohort of 3 on one thread (what a lone trial did before: one CPU idle);
(b) one cohort of 3 given both threads (``torch.set_num_threads(2)``: a lone trial with more
    threads);
(c) two trials side by side, one thread each: seeds {0, 1} and {2} (what ``grok sweep`` now
    does, ``sweeps.space.plan_split``).
Each runs in fresh processes, interleaved over the repeats; prints wall seconds (median) and
the speed-up of (b) and (c) over (a).

    python benchmarks/bench_fill_slots.py [--steps 3000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TRAIN = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
from grok_core.config import ExperimentConfig
from grok_core.training import MemberSpec, train_cohort
config = ExperimentConfig().with_overrides([f"train.steps={sys.argv[2]}"])
train_cohort(config, [MemberSpec(seed=int(s)) for s in sys.argv[3].split(",")])
"""


def _start(threads: int, steps: int, seeds: str) -> subprocess.Popen:
    env_threads = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    import os
    return subprocess.Popen([sys.executable, "-c", TRAIN, str(threads), str(steps), seeds],
                            env={**os.environ, **env_threads})


def timed(jobs: list[tuple[int, str]], steps: int) -> float:
    """Wall seconds for ``jobs`` ((threads, seeds) each) started together."""
    start = time.perf_counter()
    for process in [_start(threads, steps, seeds) for threads, seeds in jobs]:
        if process.wait() != 0:
            raise SystemExit("a training process failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ways = {"(a) one trial, 1 thread": [(1, "0,1,2")],
            "(b) one trial, 2 threads": [(2, "0,1,2")],
            "(c) two trials {0,1} + {2}": [(1, "0,1"), (1, "2")]}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, jobs in ways.items():
            times[name].append(timed(jobs, args.steps))
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["(a) one trial, 1 thread"]
    for name, value in median.items():
        print(f"{name:28s} {value:6.1f} s  speed-up over (a) {base / value:.2f}x "
              f"(median of {args.repeats})")


if __name__ == "__main__":
    main()
