"""The headline, measured: dense run vs grokking ticket at the paper's settings.

p = 67, (a+b) mod p, MLP of eq. (1), AdamW lr 1e-3 wd 1, 30k steps, k = 0.6, mask from the final
dense weights, rewound to theta_0; seeds 0, 1, 2 (each recipe one cohort). Dense runs come from
(and go to) the artifact store, so a second run only retrains the tickets.
Prints per-seed t_mem, t_gen, tau_grok and the medians against the targets
(dense median tau_grok >= 30, ticket median <= 5); exits 1 if a target is missed.

    OMP_NUM_THREADS=1 python benchmarks/headline.py [--store grok_store] [--seeds 0,1,2]
        [--set task.pairs=gt ...]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

import torch

from grok_core.config import ExperimentConfig
from grok_core.recipes import run_experiment
from grok_core.store import ArtifactStore


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="grok_store")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="extra settings, e.g. task.pairs=gt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    config = ExperimentConfig().with_overrides(["recipe=ticket", "prune.rate=0.6",
                                                *args.overrides])
    start = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the engine's notes
    result = run_experiment(config, seeds, ArtifactStore(args.store), progress=True)
    elapsed = time.perf_counter() - start
    columns = ["seed", "t_mem", "t_gen", "tau_grok", "final_test_acc"]
    print("dense (base) runs:")
    print(result.base_members[columns].to_string(index=False))
    print("tickets (k=0.6, mask from the final step; a grokking ticket only where the dense run "
          "generalised):")
    print(result.members[columns].to_string(index=False))

    def median_tau(frame):
        # a run that never generalises counts as infinitely delayed
        return statistics.median(float("inf") if t is None or t != t else t
                                 for t in frame["tau_grok"])

    dense, ticket = median_tau(result.base_members), median_tau(result.members)
    print(f"median tau_grok: dense {dense:.1f} (target >= 30), ticket {ticket:.1f} (target <= 5)")
    print(f"wall time {elapsed:.0f} s")
    return 0 if dense >= 30 and ticket <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
