"""Recipe ``dense``: randomly initialised networks, kept in the artifact store.

Each run (theta_0, checkpoints theta_t, curves, summary) is keyed by its config; a finished run
is never trained again, by ``grok train`` or by any sweep under the same storage root.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional, Sequence

import pandas as pd

from ..config import ExperimentConfig
from ..models import Params, member_slice
from ..store import ArtifactStore
from ..training import Callbacks, CohortResult, MemberSpec, TrainingState, train_cohort
from .base import CallbackChain, Recipe, ordered_members

log = logging.getLogger("grok.recipes")
EvalListener = Callable[[int, Any], None]


class DenseCheckpointsToStore(Callbacks):
    """Writes each dense member's theta_t to the store at every checkpoint step."""

    def __init__(self, store: ArtifactStore, key: str, seeds: Sequence[int],
                 on_eval: Optional[EvalListener] = None) -> None:
        self.store, self.key, self.seeds = store, key, list(seeds)
        if on_eval is not None:  # only then: listening to evaluations syncs a GPU
            self.on_eval = on_eval  # type: ignore[method-assign]

    def on_checkpoint(self, step: int, params: Params, members: Sequence[int]) -> None:
        for position, k in enumerate(members):
            self.store.save_checkpoint(self.key, self.seeds[k], step,
                                       member_slice(params, position))


def dense_checkpoint_steps(config: ExperimentConfig, steps_run: int) -> list[int]:
    """The steps at which a dense run that stopped at ``steps_run`` kept theta_t."""
    return list(range(0, steps_run, config.train.checkpoint_every)) + [steps_run]


def store_dense_results(store: ArtifactStore, config: ExperimentConfig, seeds: Sequence[int],
                        result: CohortResult) -> None:
    """Curves, then the summary (which marks the run complete), of each seed of a dense cohort
    whose checkpoints ``DenseCheckpointsToStore`` already wrote."""
    key = config.dense_key()
    store.write_run_config(key, config.to_dict())
    for k, seed in enumerate(seeds):
        curves = result.curves[result.curves["member"] == k].drop(columns="member")
        summary = {**result.summaries[k], "pruning_rate": 0.0, "dense_key": key,
                   "checkpoint_steps": dense_checkpoint_steps(
                       config, result.summaries[k]["steps_run"])}
        summary.pop("member")
        store.write_dense_run(key, seed, curves.reset_index(drop=True), summary)


def ensure_dense(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore, *,
                 device: Any = "cpu", progress: bool = False,
                 on_eval: Optional[EvalListener] = None, callbacks: Optional[Callbacks] = None,
                 resume: Optional[TrainingState] = None, state_every: Optional[int] = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make sure the store holds the dense run of ``config`` for every seed; train the missing
    ones as one cohort (``on_eval(step, rows)`` hears each evaluation, e.g. to show progress;
    ``callbacks`` hear the whole loop). With ``resume`` (a sweep trial retried mid-run) every
    seed trains on from that state. Returns (one row per seed, curves), read back from the
    store."""
    if config.recipe != "dense":
        raise ValueError("ensure_dense needs a dense config")
    key = config.dense_key()
    missing = list(seeds) if resume is not None else [
        seed for seed in seeds if not store.has_dense(key, seed)]
    for seed in seeds:
        if seed not in missing:
            log.info(f"dense run {key} seed {seed}: reused from "
                     f"{store.display(*store.run_parts(key, seed))}")
    if missing:
        log.info(f"dense run {key} seeds {','.join(map(str, missing))}: training "
                 f"({config.train.steps} steps) -> {store.display(*store.key_parts(key))}")
        writer = DenseCheckpointsToStore(store, key, missing, on_eval)
        result = train_cohort(config, [MemberSpec(seed=s) for s in missing], device=device,
                              progress=progress, callbacks=CallbackChain(writer, callbacks),
                              desc=f"dense seeds {','.join(map(str, missing))}",
                              state_every=state_every, resume=resume)
        store_dense_results(store, config, missing, result)
    rows, curves = [], []
    for seed in seeds:
        summary = store.dense_summary(key, seed)
        rows.append({**{k: v for k, v in summary.items() if k != "checkpoint_steps"},
                     "recipe": "dense", "trained": seed in missing})
        curves.append(store.dense_curves(key, seed).assign(seed=seed, pruning_rate=0.0))
    return ordered_members(pd.DataFrame(rows)), pd.concat(curves, ignore_index=True)


class Dense(Recipe):
    """Fresh networks, one per seed, kept in the artifact store."""

    name = "dense"
    description = "randomly initialised networks (theta_0 from the seed), kept in the store"
    trains_dense_runs = True


DENSE = Dense()
