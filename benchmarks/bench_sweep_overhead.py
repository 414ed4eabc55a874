"""Ray Tune overhead of a sweep: wall time against the trials' own training time.

Runs the quick pruning-rate sweep on a local Ray (fresh storage, so everything trains) and prints
wall time / (sum of the trials' own time / parallel slots), where a trial's own time is the
``train_seconds`` of its last report (training, stores and reports; not the trial's start-up
imports, which count as overhead) and slots = min(CPUs / cpus-per-trial, trials). Target: <= 1.2.
Tune's ``time_total_s`` (which includes those imports) is printed alongside.
The dense phase (a Tuner of its own) is counted in both the wall time and the trials' time.

    python benchmarks/bench_sweep_overhead.py [--space pruning_rate] [--max-cohort 64]
                                              [--set train.steps=6000 ...]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sweeps.launch import SweepRequest, run_sweep


def trial_seconds(sweep_dir: Path, field: str = "train_seconds") -> float:
    """Sum over trials of ``field`` in their last report."""
    total = 0.0
    for result_file in sweep_dir.glob("*/result.json"):
        lines = [line for line in result_file.read_text().splitlines() if line]
        total += json.loads(lines[-1])[field]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="pruning_rate")
    parser.add_argument("--max-cohort", type=int, default=64)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a setting override for every trial, as in grok sweep")
    args = parser.parse_args()
    import ray

    ray.init(include_dashboard=False, log_to_driver=False)  # started before the clock runs
    slots = int(ray.cluster_resources()["CPU"])
    with tempfile.TemporaryDirectory() as storage:
        request = SweepRequest(space=args.space, quick=True, storage=storage, name="bench",
                               max_cohort=args.max_cohort, overrides=args.overrides)
        start = time.perf_counter()
        run_sweep(request, log=lambda m: None)
        wall = time.perf_counter() - start
        own, tune_total = (trial_seconds(Path(storage, "bench"), field)
                           + trial_seconds(Path(storage, "bench.dense"), field)
                           for field in ("train_seconds", "time_total_s"))
        trials = len(list(Path(storage, "bench").glob("*/result.json")))
    slots = min(slots, trials)  # a sweep of fewer trials than CPUs cannot use more slots
    ideal = own / slots
    print(f"{trials} trial(s); wall {wall:.1f} s, trials' own time {own:.1f} s over "
          f"{slots} slot(s) "
          f"(ideal {ideal:.1f} s): overhead ratio {wall / ideal:.2f} (target <= 1.2); "
          f"fixed cost {wall - ideal:.1f} s; by Tune's time_total_s ({tune_total:.1f} s) the ratio "
          f"would be {wall / (tune_total / slots):.2f}")


if __name__ == "__main__":
    main()
