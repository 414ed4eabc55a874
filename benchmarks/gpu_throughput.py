"""Throughput on a GPU: one prepared check, under 8 minutes on one NVIDIA GPU.

(1) A cohort of ``--members`` (default 64) dense members of the paper's MLP on (a+b) mod 67,
    trained together on the device for ``--steps`` steps after a warm-up: member-steps/s and
    what that means in member-runs of 30,000 steps per GPU-hour.
(2) The quick headline sweep through local Ray with ``--gpus-per-trial`` (default 0.25, so four
    trials share the GPU): its wall time and that every trial finished.

Every path also runs on the CPU (``--device cpu``, ``--gpus-per-trial 0``: what CI can check),
with the figures then meaning CPU member-steps/s.

    python benchmarks/gpu_throughput.py                       # on a GPU machine
    python benchmarks/gpu_throughput.py --device cpu --members 8 --steps 50 --gpus-per-trial 0
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

from grok_core.config import ExperimentConfig
from grok_core.training import MemberSpec, train_cohort

RUN_STEPS = 30_000  # the paper's dense runs


def cohort_rate(device: str, members: int, steps: int) -> float:
    """Member-steps/s of ``members`` dense MLP members on ``device`` (after a warm-up)."""
    config = ExperimentConfig().with_overrides([f"train.steps={steps}", "train.stop_margin=null"])
    specs = [MemberSpec(seed=s) for s in range(members)]
    train_cohort(config.with_overrides(["train.steps=20"]), specs, device=device)  # warm up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = train_cohort(config, specs, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    assert result.steps_run == steps and len(result.summaries) == members
    return steps * members / (time.perf_counter() - start)


def fractional_sweep(gpus_per_trial: float) -> tuple[float, int]:
    """Wall seconds of ``grok sweep headline --quick`` with ``--gpus-per-trial`` and its exit
    code (0: every trial finished)."""
    with tempfile.TemporaryDirectory() as storage:
        command = [sys.executable, "-m", "sweeps.cli", "sweep", "headline", "--quick",
                   "--storage", storage, "--gpus-per-trial", str(gpus_per_trial)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
        return time.perf_counter() - start, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=("cuda", "cpu"))
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--gpus-per-trial", type=float, default=0.25)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    print(f"{time.strftime('%Y-%m-%d')} {name}, torch {torch.__version__}")
    rate = cohort_rate(args.device, args.members, args.steps)
    print(f"cohort of {args.members} MLP members, {args.steps} steps: {rate:,.0f} member-steps/s "
          f"= {rate * 3600 / RUN_STEPS:,.0f} member-runs of {RUN_STEPS:,} steps per "
          f"{'GPU' if args.device == 'cuda' else 'CPU'}-hour")
    seconds, code = fractional_sweep(args.gpus_per_trial)
    print(f"grok sweep headline --quick --gpus-per-trial {args.gpus_per_trial:g}: "
          f"{seconds:.0f} s, {'every trial finished' if code == 0 else f'exit {code}'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
