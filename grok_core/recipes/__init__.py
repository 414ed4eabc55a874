"""Experiment recipes: what to train, from which weights, with which masks.

Each recipe is one module here with one ``Recipe`` object, listed in ``RECIPE_REGISTRY``:

``dense``         fresh networks, kept in the artifact store (``dense.py``)
``ticket``        theta_0 masked by a dense run's theta_t scores (``ticket.py``)
``norm_control``  dense theta_0 rescaled to a ticket's L1 / L2 norm (``norm_control.py``)
``edge_popup``    scores learned over theta_mem (``edge_popup.py``)

``run_recipe`` trains any of them: ``grok train`` calls it with a progress bar, a sweep's
trial (``sweeps.trial``) with Tune's reporter, a resume state and the dense runs' progress.
To add a recipe: a module with a ``Recipe`` subclass, a line in ``RECIPE_REGISTRY``, and its
``RecipeTraits`` line in ``grok_core/config/names.py`` (what configs know of it, checked without
loading torch); ``tests/test_registries.py`` checks that the two agree.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional, Sequence, TypeVar

from ..config import ConfigError, ExperimentConfig, check_pruning_rate
from ..errors import CorruptArtifact
from ..store import ArtifactStore
from ..training import Callbacks, TrainingState, train_cohort
from .base import (CURVE_LABELS, MEMBER_COLUMNS, CallbackChain, ExperimentResult, Recipe,
                   global_norm, member_tables, model_for, non_grokking_warnings)
from .dense import (DENSE, DenseCheckpointsToStore, EvalListener, dense_checkpoint_steps,
                    ensure_dense, store_dense_results)
from .edge_popup import EDGE_POPUP, edge_popup_members, memorising_start_warnings
from .norm_control import NORM_CONTROL, norm_control_members
from .ticket import TICKET, generalised_by, resolve_prune_step, ticket_members

log = logging.getLogger("grok.recipes")
T = TypeVar("T")

RECIPE_REGISTRY: dict[str, Recipe] = {
    recipe.name: recipe for recipe in (DENSE, TICKET, NORM_CONTROL, EDGE_POPUP)}


def get_recipe(name: str) -> Recipe:
    """The registered recipe ``name`` (configs are validated, so it exists)."""
    return RECIPE_REGISTRY[name]


def repairing(store: ArtifactStore, work: Callable[[], T]) -> T:
    """``work()``, where a dense run it reads is found corrupt (``CorruptArtifact``: a file
    cut short or changed since it was written) trained again in place and ``work`` redone;
    said in one line. A run corrupt again right after it was retrained is an error (the
    storage itself is failing)."""
    retrained: set[tuple[str, int]] = set()
    while True:
        try:
            return work()
        except CorruptArtifact as bad:
            if (bad.key, bad.seed) in retrained:
                raise
            retrained.add((bad.key, bad.seed))
            log.warning(f"{bad}; it is not used: training the dense run again in place")
            store.discard_dense(bad.key, bad.seed)


def run_recipe(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore, *,
               rates: Optional[Sequence[float]] = None, device: Any = "cpu",
               progress: bool = False, callbacks: Optional[Callbacks] = None,
               resume: Optional[TrainingState] = None, state_every: Optional[int] = None,
               on_dense_eval: Optional[EvalListener] = None) -> ExperimentResult:
    """Train ``config.recipe`` for a cohort of seeds (and, but for ``dense``, pruning rates).

    Dense runs come from the store when it has them and go to it when trained. ``callbacks``
    hear the cohort's training loop (``state_every``: a resumable snapshot that often;
    ``resume`` continues one); ``on_dense_eval`` hears the evaluations of dense runs a ticket
    trains first. The same call serves ``grok train`` and a sweep's trial."""
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    seeds = list(seeds)
    recipe = get_recipe(config.recipe)
    if recipe.trains_dense_runs:
        if rates:
            raise ConfigError("rates: a dense run has no pruning rate; use the ticket recipe")
        members, curves = repairing(store, lambda: ensure_dense(
            config, seeds, store, device=device, progress=progress, callbacks=callbacks,
            resume=resume, state_every=state_every))
        return ExperimentResult(config.recipe, config.dense_key(), members, curves)
    rates = list(rates) if rates else [config.prune.rate]
    for rate in rates:
        check_pruning_rate(rate, "--rates")

    def dense_runs_and_members():
        base = (None, None)
        if config.needs_dense_base:  # pruning at initialisation needs no dense run
            base = ensure_dense(config.dense_base(), seeds, store, device=device,
                                progress=progress, on_eval=on_dense_eval)
        return base, recipe.members(config, seeds, rates, store)

    (base_rows, base_curves), members = repairing(store, dense_runs_and_members)
    for line in non_grokking_warnings(members) + memorising_start_warnings(members):
        # grok results says these too
        log.warning(line)
    log.info(f"{config.recipe}: {len(members)} members (seeds {','.join(map(str, seeds))} x "
             f"rates {','.join(map(str, rates))}), {recipe.start_description(members)}")
    result = train_cohort(config, members, device=device, progress=progress,
                          callbacks=callbacks, state_every=state_every, resume=resume,
                          desc=f"{config.recipe} x{len(members)}")
    rows, curves = member_tables(config, members, result)
    return ExperimentResult(config.recipe, config.dense_key(), rows, curves, base_rows,
                            base_curves)


def run_experiment(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore,
                   rates: Optional[Sequence[float]] = None, **kwargs: Any) -> ExperimentResult:
    """``run_recipe`` under the name scripts and benchmarks know."""
    return run_recipe(config, seeds, store, rates=rates, **kwargs)


__all__ = [
    "CURVE_LABELS", "MEMBER_COLUMNS", "RECIPE_REGISTRY", "CallbackChain", "DenseCheckpointsToStore",
    "ExperimentResult", "Recipe", "dense_checkpoint_steps", "edge_popup_members", "ensure_dense",
    "generalised_by", "get_recipe", "global_norm", "member_tables", "memorising_start_warnings",
    "model_for", "non_grokking_warnings", "norm_control_members", "repairing",
    "resolve_prune_step", "run_experiment", "run_recipe", "store_dense_results", "ticket_members"]
