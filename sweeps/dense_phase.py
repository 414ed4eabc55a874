"""The dense phase: dense runs that several trials share, trained once before them.

A ticket trial trains a dense run it needs itself when no other trial needs it. Where several
do (the mask steps of ``pruning_step``, rates split over trials, every trial of a critical-ratio
search), the run is trained first, as a Tune run of its own (``NAME.dense``, or ``dense/`` in a
search's folder), so that no two trials train it side by side. Runs the store has are skipped.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

from grok_core.store import ArtifactStore

from .space import cell_configs
from .trainable import DENSE_RUN_PARAM, dense_phase_trainable
from .tune_runner import TuneRun, check_finished, fit, move_aside

log = logging.getLogger("grok.sweeps")


def dense_phase_space(cells: Sequence[dict], store: ArtifactStore, slots: int = 1,
                      max_cohort: int = 64, min_users: int = 2) -> Optional[dict]:
    """A grid over the dense runs that at least ``min_users`` trials need and the store lacks
    (None if there are none).

    Seeds of one dense config are split into enough trials to fill ``slots`` (and none above
    ``max_cohort`` members): on CPUs parallel trials beat one larger cohort."""
    users: dict[tuple[str, int], int] = {}
    configs: dict[str, dict] = {}
    for cell in cells:
        needs = set()  # a trial of several variants trains a dense run they share once
        for config in cell_configs(cell):
            if config.needs_dense_base:
                base = config.dense_base()
                configs[base.dense_key()] = base.to_dict()
                needs |= {(base.dense_key(), seed) for seed in cell["seeds"]}
        for run in needs:
            users[run] = users.get(run, 0) + 1
    needed: dict[str, list[int]] = {}
    for (key, seed), count in sorted(users.items()):
        if count >= min_users and not store.has_dense(key, seed):
            needed.setdefault(key, []).append(seed)
    if not needed:
        return None
    per_trial = max(1, min(max_cohort, -(-sum(map(len, needed.values())) // slots)))
    runs = []
    for key, seeds in needed.items():
        settings = {k: v for k, v in configs[key].items() if k != "base"}
        runs += [{**settings, "seeds": seeds[i:i + per_trial]}
                 for i in range(0, len(seeds), per_trial)]
    return {DENSE_RUN_PARAM: {"grid_search": runs}}


def run_dense_phase(space: Optional[dict], name: str, storage_path: str, store: str, *,
                    cpus_per_trial: float, gpus_per_trial: float, report_every: int,
                    restore: bool = True) -> None:
    """Train the dense runs of ``dense_phase_space`` (nothing if ``space`` is None) as the Tune
    run ``<storage_path>/<name>``; SweepInterrupted if it stopped early."""
    if space is None:
        return
    runs = space[DENSE_RUN_PARAM]["grid_search"]
    seeds = sorted({s for run in runs for s in run["seeds"]})
    log.info(f"dense phase: the dense runs several trials share, trained once first (seeds "
             f"{','.join(map(str, seeds))}, {len(runs)} trial(s))")
    if not restore:
        move_aside(storage_path, name)
    run = TuneRun(dense_phase_trainable, space, name, storage_path, store,
                  cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                  report_every=report_every, restore=restore)
    check_finished(fit(run), run.path)
