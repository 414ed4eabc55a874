"""Ray Tune overhead of a sweep: wall time against the trials' own training time.

Runs the quick pruning-rate sweep at a small size (``SMALL``: p=23, narrow, 3000 steps, rates
0-0.9) on a local Ray (fresh storage, so everything trains), twice:
as it is (trials of a few seconds) and with 6000-step dense runs and tickets that never stop
early (trials of ~20 s and more), and prints for each:

- the fixed cost: wall time minus the trials' own time on the critical path, where a trial's
  own time is the ``train_seconds`` of its last report (training, stores and reports; not the
  trial's start-up imports, which count as overhead) and the critical path is the finish time
  of those times scheduled on the CPUs longest first (with as many trials as CPUs: the longest
  trial). Target: <= 4 s on 2 cores.
- the overhead ratio: wall time / that critical path. Target: <= 1.2 for the longer version
  (a fixed cost weighs less as trials grow).

The dense phase (a Tuner of its own, when the sweep has one) is counted in both the wall time
and the critical path (the Tuners run one after the other). Tune's ``time_total_s`` (which
includes the trial's imports) gives a second ratio.

    OMP_NUM_THREADS=1 python benchmarks/bench_sweep_overhead.py [--space pruning_rate]
                                              [--max-cohort 64] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sweeps.grid_sweep import SweepRequest, run_sweep
from sweeps.space import makespan

LONGER = ["train.steps=6000", "train.stop_margin=none", "base.train.steps=6000"]
# The size the README's overhead figures were measured at (the quick size before it was chosen
# to show the paper's effects): trials of a few seconds, so that the fixed cost shows.
SMALL = ["task.p=23", "task.pairs=all", "task.train_fraction=0.5", "model.d_emb=64",
         "model.d_hidden=32", "optim.lr=0.003", "train.steps=3000", "train.checkpoint_every=500",
         "train.stop_margin=500", "base.train.steps=3000", "base.train.checkpoint_every=500"]
SMALL_RATES = [round(0.1 * i, 1) for i in range(10)]


def trial_times(sweep_dir: Path, field: str = "train_seconds") -> list[float]:
    """``field`` of the last report of every trial of the sweep at ``sweep_dir``."""
    times = []
    for result_file in sweep_dir.glob("*/result.json"):
        lines = [line for line in result_file.read_text().splitlines() if line]
        times.append(json.loads(lines[-1])[field])
    return times


def measure(space: str, max_cohort: int, overrides: list[str], cpus: int) -> str:
    """One sweep on fresh storage; a line with its fixed cost and overhead ratio."""
    with tempfile.TemporaryDirectory() as storage:
        request = SweepRequest(study=space, quick=True, storage=storage, name="bench",
                               max_cohort=max_cohort, overrides=[*SMALL, *overrides],
                               rates=SMALL_RATES if space == "pruning_rate" else None)
        start = time.perf_counter()
        run_sweep(request)
        wall = time.perf_counter() - start
        ideal, trials, tune_ideal, tuners = 0.0, 0, 0.0, 0
        for name in ("bench.dense", "bench"):  # Tuners run one after the other
            own = trial_times(Path(storage, name))
            if own:
                ideal += makespan(own, cpus)
                tune_ideal += makespan(trial_times(Path(storage, name), "time_total_s"), cpus)
                trials += len(own)
                tuners += 1
    return (f"{trials} trial(s) in {tuners} Tuner(s); wall {wall:.1f} s, trials' own time on "
            f"the critical path {ideal:.1f} s: fixed cost {wall - ideal:.1f} s (target <= 4), "
            f"overhead ratio {wall / ideal:.2f} (by Tune's time_total_s {wall / tune_ideal:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="pruning_rate")
    parser.add_argument("--max-cohort", type=int, default=64)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="a setting override for every trial, as in grok sweep")
    args = parser.parse_args()
    import ray

    ray.init(include_dashboard=False, log_to_driver=False)  # started before the clock runs
    cpus = int(ray.cluster_resources()["CPU"])
    print(f"quick {args.space}:          "
          + measure(args.space, args.max_cohort, args.overrides, cpus))
    print(f"quick {args.space}, longer:  "
          + measure(args.space, args.max_cohort, [*args.overrides, *LONGER], cpus)
          + " (target ratio <= 1.2)")


if __name__ == "__main__":
    main()
