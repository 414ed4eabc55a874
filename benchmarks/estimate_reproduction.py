"""What the full reproduction (``grok reproduce`` without ``--quick``) costs, from measured speeds.

For every study (and the critical-ratio search) this counts the member-steps its full sweep
trains: each ticket / dense / control member's step budget, and each dense run behind tickets
once (the artifact store shares them across studies, as ``grok reproduce`` does). It then times a
short cohort of each distinct network here (one thread, the sweep's cohort size up to 8) and
prints, per study and in total, the member-steps, the measured member-steps/s and the CPU-hours.
Tickets stop 2000 steps after they generalise, so the ticket part is an upper bound; edge-popup
members are timed as dense members of the same network. The time per step excludes a run's fixed
costs (building data, the last evaluation) but includes the periodic evaluations it spans; a
minibatch network (the LSTM, parity) is timed on a small split, so its evaluations are left out
(the LSTM's, every 200 steps, add under a tenth).

Both critical-ratio searches (the MLP's and the transformer's) count as studies, as in ``grok
reproduce``. The wall time on 2 cores is given for ideal packing and at the speed-up two
one-thread trials side by side measure on this machine (``parallel_speedup``).

    OMP_NUM_THREADS=1 python benchmarks/estimate_reproduction.py [--steps 300] [--only headline,pai]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from grok_core.config import ExperimentConfig
from grok_core.training import MemberSpec, train_cohort
from sweeps.reproduce import SEARCHES, search_request, studies
from sweeps.space import expand_cells, validate_cell

COHORT = 8  # members timed together (the sweeps train up to 64; 8 is what a CPU slot gets)


def study_cells(name: str) -> list[tuple[dict, int]]:
    """Each cell of the study's full sweep and how many times it is trained (the search trains
    its template once per trial, at one rate each)."""
    from search_spaces import get_study

    if name in SEARCHES:
        request = search_request(SEARCHES[name]).resolved()
        return [({**request.template(), "rates": [request.low]}, request.trials)]
    return [(cell, 1) for cell in expand_cells(get_study(name).param_space(quick=False))]


def work(name: str) -> tuple[list[tuple[ExperimentConfig, int]], dict]:
    """The study's members as (config, member-steps), and its dense runs behind tickets as
    {(dense key, seed): (dense config, steps)}."""
    members, dense = [], {}
    for cell, times in study_cells(name):
        config = validate_cell(cell)
        rates = cell["rates"] if isinstance(cell.get("rates"), list) else [None]
        members.append((config, times * len(cell["seeds"]) * len(rates) * config.train.steps))
        if config.needs_dense_base:
            base = config.dense_base()
            dense.update({(base.dense_key(), seed): (base, base.train.steps)
                          for seed in cell["seeds"]})
    return members, dense


def network(config: ExperimentConfig) -> str:
    """What sets the speed of a step: task, model, optimiser and batch size."""
    settings = config.to_dict()
    return json.dumps([settings["task"], settings["model"], settings["optim"]["name"],
                       settings["train"].get("batch_size")], sort_keys=True)


def _seconds(config: ExperimentConfig, members: int, steps: int) -> float:
    start = time.perf_counter()
    train_cohort(config.with_overrides([f"train.steps={steps}"]),
                 [MemberSpec(seed=s) for s in range(members)])
    return time.perf_counter() - start


def member_steps_per_second(config: ExperimentConfig, members: int, most_steps: int,
                            seconds: float = 20.0) -> float:
    """Measured: ``members`` dense members of the config's network together, from the time
    ``n`` more steps add (runs of n and 2n steps; so a run's fixed costs, such as building the
    data and measuring both splits at its end, are not counted per step), the median of three.
    ``n`` is at most ``most_steps``, fewer for a slow network so that the timing takes about
    ``seconds``."""
    dense = config.dense_base() if config.needs_dense_base else config
    dense = dense.with_overrides(["train.stop_margin=null"])
    if dense.train.batch_size:  # a minibatch step costs the same on a small split; evaluating
        batch = dense.train.batch_size  # the full one would dominate a short timing
        dense = dense.with_overrides([f"task.n_train={4 * batch}", f"task.n_test={batch}"])
    _seconds(dense, 1, 2)  # warm up
    slowest = 2 / _seconds(dense, 1, 2)  # a member's steps/s, were the fixed costs per step
    steps = max(4, min(most_steps, int(seconds * slowest / members / 9)))
    # the median of three: on a shared machine one timing of a few seconds can be far off
    return statistics.median(
        steps * members / max(1e-9, _seconds(dense, members, 2 * steps)
                              - _seconds(dense, members, steps)) for _ in range(3))


def _busy(seconds: float, queue) -> None:
    """Train the MLP's dense cohort in a loop for ``seconds``; put the member-steps done."""
    torch.set_num_threads(1)
    config = ExperimentConfig().with_overrides(["train.steps=50"])
    done, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        train_cohort(config, [MemberSpec(seed=0)])
        done += 50
    queue.put(done)


def parallel_speedup(processes: int = 2, seconds: float = 10.0) -> float:
    """How many times one process's throughput ``processes`` one-thread processes achieve
    together on this machine (2 on two free cores; less where the cores are shared or
    hyperthreads): the factor by which trials side by side beat one."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    counts = []
    for n in (1, processes):
        queue = context.Queue()
        workers = [context.Process(target=_busy, args=(seconds, queue)) for _ in range(n)]
        for worker in workers:
            worker.start()
        counts.append(sum(queue.get() for _ in workers))
        for worker in workers:
            worker.join()
    return counts[1] / counts[0]


def hours(seconds: float) -> str:
    return f"{seconds / 3600:8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300,
                        help="most steps timed per network (a slow one gets fewer: ~20 s each)")
    parser.add_argument("--only", default=None, help="comma-separated studies (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = studies(args.only.split(",") if args.only else None)
    speeds: dict[str, float] = {}
    seen_dense: set = set()
    total_steps, total_seconds = 0, 0.0
    print(f"{'study':16s} {'member-steps':>13s} {'steps/s':>9s} {'CPU-hours':>9s}  (dense runs "
          "counted once, in the first study that needs them)")
    for name in names:
        members, dense = work(name)
        rows = members + [(config, steps) for key, (config, steps) in dense.items()
                          if key not in seen_dense]
        seen_dense |= set(dense)
        study_steps = sum(steps for _, steps in rows)
        study_seconds = 0.0
        for config, steps in rows:
            key = network(config)
            if key not in speeds:
                speeds[key] = member_steps_per_second(config, COHORT, args.steps)
            study_seconds += steps / speeds[key]
        total_steps += study_steps
        total_seconds += study_seconds
        print(f"{name:16s} {study_steps:13,d} {study_steps / study_seconds:9.1f} "
              f"{hours(study_seconds)}", flush=True)
    print(f"{'total':16s} {total_steps:13,d} {total_steps / total_seconds:9.1f} "
          f"{hours(total_seconds)}")
    speedup = parallel_speedup()
    print(f"on 2 cores (one trial per core, ideal packing): {total_seconds / 2 / 3600:.1f} h wall; "
          f"at this machine's measured speed-up of two trials side by side ({speedup:.2f}x one): "
          f"{total_seconds / speedup / 3600:.1f} h; on 64 cores: {total_seconds / 64 / 3600:.2f} h "
          "(one thread per trial)")


if __name__ == "__main__":
    main()
