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

import dataclasses
import logging
from typing import Any, Callable, NamedTuple, Optional, Sequence, TypeVar

import pandas as pd

from ..config import ConfigError, ExperimentConfig, check_pruning_rate
from ..errors import CorruptArtifact
from ..store import ArtifactStore
from ..training import Callbacks, CohortResult, MemberSpec, TrainingState, train_cohort
from ..trial_config import check_one_cohort
from .base import (CURVE_LABELS, MEMBER_COLUMNS, CallbackChain, ExperimentResult, Recipe,
                   global_norm, member_slice_of, member_tables, model_for,
                   non_grokking_warnings)
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
    return run_variants([(None, config)], seeds, store, rates=rates, device=device,
                        progress=progress, callbacks=callbacks, resume=resume,
                        state_every=state_every, on_dense_eval=on_dense_eval)


class _Part(NamedTuple):
    """One variant of a cohort: its label, config and members, and the dense runs behind
    them (None, None: pruned at initialisation)."""

    label: Optional[str]
    config: ExperimentConfig
    members: list[MemberSpec]
    base_rows: Optional[pd.DataFrame]
    base_curves: Optional[pd.DataFrame]


def _prepared(label: Optional[str], config: ExperimentConfig, seeds: list[int],
              rates: Optional[Sequence[float]], store: ArtifactStore, device: Any,
              progress: bool, on_dense_eval: Optional[EvalListener]) -> _Part:
    """The members of one variant (a recipe that starts from dense runs), the dense runs it
    needs trained (or read from the store) first, its warnings said."""
    rates = list(rates) if rates else [config.prune.rate]
    for rate in rates:
        check_pruning_rate(rate, "--rates")
    recipe = get_recipe(config.recipe)

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
    log.info(f"{label or config.recipe}: {len(members)} members (seeds "
             f"{','.join(map(str, seeds))} x rates {','.join(map(str, rates))}), "
             f"{recipe.start_description(members)}")
    return _Part(label, config, _own_optim(config, members), base_rows, base_curves)


def run_variants(variants: Sequence[tuple[Optional[str], ExperimentConfig]],
                 seeds: Sequence[int], store: ArtifactStore, *,
                 rates: Optional[Sequence[float]] = None, device: Any = "cpu",
                 progress: bool = False, callbacks: Optional[Callbacks] = None,
                 resume: Optional[TrainingState] = None, state_every: Optional[int] = None,
                 on_dense_eval: Optional[EvalListener] = None) -> ExperimentResult:
    """Train the (label, config) ``variants`` of recipes that start from dense runs as one
    cohort: each variant's members (seeds x rates, built by its own recipe, with its own lr
    and weight decay) in order, variant after variant, in one ``train_cohort`` call. They must
    share what the loop shares (``grok_core.trial_config.cohort_signature``, else
    ConfigError); members never interact, so each has its solo run's numbers.

    One variant (label None or not) gives ``run_recipe``'s tables as they are; several add a
    ``variant`` column (the label) to the member rows and curves. The other arguments are
    ``run_recipe``'s."""
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    check_one_cohort(variants)
    parts = [_prepared(label, config, list(seeds), rates, store, device, progress,
                       on_dense_eval) for label, config in variants]
    cohort = [member for part in parts for member in part.members]
    first = parts[0].config  # the loop reads only what every variant shares
    name = first.recipe if len(parts) == 1 else f"{len(parts)} variants"
    result = train_cohort(first, cohort, device=device, progress=progress, callbacks=callbacks,
                          state_every=state_every, resume=resume, desc=f"{name} x{len(cohort)}")
    return _variant_tables(parts, result)


def _own_optim(config: ExperimentConfig, members: list[MemberSpec]) -> list[MemberSpec]:
    """``members`` with their variant's lr and weight decay where they set none of their
    own (in a cohort of several variants, the first variant's config is the loop's)."""
    return [dataclasses.replace(
        m, lr=config.optim.lr if m.lr is None else m.lr,
        weight_decay=config.optim.weight_decay if m.weight_decay is None else m.weight_decay)
        for m in members]


def _variant_tables(parts: list[_Part], result: CohortResult) -> ExperimentResult:
    """The ``ExperimentResult`` of a cohort of ``parts``, each variant's rows and curves
    from its own members' slice of ``result`` (labelled ``variant`` where there are several)."""
    rows, curves, start = [], [], 0
    for part in parts:
        own = range(start, start + len(part.members))
        start += len(part.members)
        part_rows, part_curves = member_tables(part.config, part.members,
                                               member_slice_of(result, own))
        if len(parts) > 1:
            part_rows, part_curves = (part_rows.assign(variant=part.label),
                                      part_curves.assign(variant=part.label))
        rows.append(part_rows)
        curves.append(part_curves)
    bases = {}  # variants may share their dense runs: each dense key once
    for part in parts:
        if part.base_rows is not None:
            bases.setdefault(part.config.dense_key(), (part.base_rows, part.base_curves))
    base_rows, base_curves = (
        (pd.concat([r for r, _ in bases.values()], ignore_index=True),
         pd.concat([c for _, c in bases.values()], ignore_index=True)) if bases else (None, None))
    first = parts[0].config
    return ExperimentResult(first.recipe, first.dense_key(), pd.concat(rows, ignore_index=True),
                            pd.concat(curves, ignore_index=True), base_rows, base_curves)


def run_experiment(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore,
                   rates: Optional[Sequence[float]] = None, **kwargs: Any) -> ExperimentResult:
    """``run_recipe`` under the name scripts and benchmarks know."""
    return run_recipe(config, seeds, store, rates=rates, **kwargs)


__all__ = [
    "CURVE_LABELS", "MEMBER_COLUMNS", "RECIPE_REGISTRY", "CallbackChain", "DenseCheckpointsToStore",
    "ExperimentResult", "Recipe", "dense_checkpoint_steps", "edge_popup_members", "ensure_dense",
    "generalised_by", "get_recipe", "global_norm", "member_tables", "memorising_start_warnings",
    "model_for", "non_grokking_warnings", "norm_control_members", "repairing",
    "resolve_prune_step", "run_experiment", "run_recipe", "run_variants", "store_dense_results",
    "ticket_members"]
