"""Param-space surgery for sweeps: ``--set`` overrides, grid expansion, validation of every
cell, and splitting cohorts into trials (to respect ``--max-cohort`` and to fill the slots).

A space is the plain dict a ``search_spaces`` module returns: an ``ExperimentConfig`` in nested
form plus ``seeds`` and ``rates``, where any value may be a ``tune.grid_search``. Nothing here
starts Ray or imports torch.

Variants that can share a cohort (``grok_core.trial_config.cohort_signature``) train in one
trial: ``group_variants`` turns a grid over variants into a grid over variant groups before
the cohorts are split, so a trial's cohort is seeds x rates x the variants of its group.
"""
from __future__ import annotations

import copy
import math
from typing import Iterable, Optional, Sequence

from grok_core.config import (MASK_RECIPES, ConfigError, ExperimentConfig, check_pruning_rate,
                              typed_override)
from grok_core.trial_config import (VARIANT_KEY, cohort_signature, compatible_groups,
                                    split_trial_config, split_variant_config)
from search_spaces import expand_cells, get_study, grid_axes, is_grid, set_path, space_recipes


def apply_overrides(space: dict, overrides: Iterable[str]) -> dict:
    """``--set key=value`` on every trial: the typed value replaces whatever (grid or not) is
    there; unknown keys and ill-typed values raise ConfigError."""
    space = copy.deepcopy(space)
    for text in overrides:
        key, value = typed_override(text)
        set_path(space, key, value)
    return space


def cell_configs(cell: dict) -> list[ExperimentConfig]:
    """The typed config of each variant the cell trains (one without variants; ConfigError
    names the bad key, or variants that cannot share the cell's cohort); seeds and rates
    checked too."""
    seeds = cell.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds: expected a non-empty list of non-negative integers, got {seeds!r}")
    for rate in cell.get("rates") or []:
        check_pruning_rate(rate, "rates")
    variants, _, _ = split_variant_config(cell)
    return [config for _, config in variants]


def validate_cell(cell: dict) -> ExperimentConfig:
    """The typed config of a cell of one variant (or none), checked as ``cell_configs``."""
    config, *others = cell_configs(cell)
    if others:
        raise ConfigError("variant: a cell of several variants has one config per variant "
                          "(cell_configs)")
    return config


def requested_space(study: str, quick: bool = False, overrides: Iterable[str] = (),
                    seeds: Optional[Sequence[int]] = None,
                    rates: Optional[Sequence[float]] = None,
                    study_options: Optional[dict] = None) -> dict:
    """The param space of ``study`` with overrides, seeds and rates (not yet split into
    trials); ConfigError for an unknown study, key or value. ``study_options`` go to the
    study's ``param_space`` (the critical-ratio study's ``model``)."""
    built = apply_overrides(get_study(study).param_space(quick=quick, **(study_options or {})),
                            overrides)
    if seeds is not None:
        built["seeds"] = list(seeds)
    if rates is not None:
        if not space_recipes(built) & set(MASK_RECIPES):
            raise ConfigError(f"--rates: the {study} study trains dense runs, which have "
                              "no pruning rate")
        built["rates"] = list(rates)
    return built


def validated_cells(space: dict) -> list[dict]:
    """Every cell of ``space``, each checked (ConfigError names the first bad key)."""
    cells = expand_cells(space)
    for cell in cells:
        cell_configs(cell)
    return cells


# --- cohorts into trials --------------------------------------------------------------------
# Relative cost of one member in the split planner: a dense run trained inside a trial costs 1,
# a ticket member costs 1 too (it trains the same number of steps unless it stops early, which
# cannot be known in advance). Only the comparison between splits matters.
DENSE_COST = 1.0
TICKET_COST = 1.0


def makespan(costs: Sequence[float], slots: int) -> float:
    """Finish time of ``costs`` run on ``slots`` parallel slots, longest first (LPT)."""
    loads = [0.0] * max(1, slots)
    for cost in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += cost
    return max(loads)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _chunks(values: list, size: int) -> list[list]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def plan_split(n_seeds: int, n_rates: Optional[int], max_cohort: int, slots: int,
               cells: int = 1, variants: int = 1) -> tuple[int, int]:
    """(seeds per trial, rates per trial) for a cell of ``n_seeds`` x ``n_rates`` x
    ``variants`` members (``n_rates`` None: a dense cell; ``variants``: the variants that
    train in each of its trials, ``split_cohorts``) that ``cells`` cells share ``slots``
    slots with.

    Every split with at most ``max_cohort`` members per trial is costed by its makespan on the
    cell's share of the slots: its trials (a trial trains its own dense runs unless the rates
    are chunked, when several trials share them and a dense phase trains them first) scheduled
    longest first. The cheapest wins; among equals, the one without a dense phase, then the one
    with fewer trials (larger cohorts are cheaper per member, markedly so on a GPU)."""
    if max_cohort < 1:
        raise ConfigError(f"--max-cohort: must be at least 1, got {max_cohort}")
    share = max(1, slots // max(1, cells))
    rates = n_rates or 1
    ticket_cost = TICKET_COST * variants  # per (seed, rate): one member per variant
    best: Optional[tuple[float, bool, int, int, int]] = None
    for seeds_per in range(1, n_seeds + 1):
        for rates_per in range(1, rates + 1):
            if seeds_per * rates_per * variants > max_cohort:
                continue
            seed_groups = _chunks(list(range(n_seeds)), seeds_per)
            rate_groups = _chunks(list(range(rates)), rates_per)
            if n_rates is None:
                time = makespan([DENSE_COST * variants * len(g) for g in seed_groups], share)
            elif len(rate_groups) == 1:  # each trial trains its own dense runs first
                time = makespan([len(g) * (DENSE_COST + ticket_cost * rates)
                                  for g in seed_groups], share)
            else:  # dense phase first (one dense run per slot), then the ticket trials
                time = (makespan([DENSE_COST] * n_seeds, share)
                        + makespan([ticket_cost * len(s) * len(r) for s in seed_groups
                                     for r in rate_groups], share))
            trials = len(seed_groups) * len(rate_groups)
            dense_phase = n_rates is not None and len(rate_groups) > 1  # a Tuner more (~4 s)
            candidate = (round(time, 9), dense_phase, trials, -seeds_per, rates_per)
            if best is None or candidate < best:
                best = candidate
    assert best is not None
    return -best[3], best[4]


def group_variants(space: dict) -> dict:
    """``space`` with its grid over variants (if any) made a grid over variant groups: the
    variants whose configs have one ``cohort_signature`` in every cell of the other axes
    (overrides included) are one group, a list of their dicts, and train as one cohort; a
    variant that shares with none stays a dict of its own (a trial of one variant, as before
    groups existed). Cells that fail validation count as sharing with none (they are refused
    by ``validated_cells`` later, with the bad key named)."""
    values = space.get(VARIANT_KEY)
    if not is_grid(values):
        return space
    values = values["grid_search"]
    signatures = [tuple(_signature(cell) for cell in expand_cells({**space, VARIANT_KEY: v}))
                  for v in values]
    groups = [[values[i] for i in group] for group in compatible_groups(signatures)]
    return {**space, VARIANT_KEY: {"grid_search": [_grid_value(g) for g in groups]}}


def _signature(cell: dict) -> Optional[str]:
    try:
        return cohort_signature(split_trial_config(cell)[0])
    except ConfigError:
        return None


def _grid_value(variants: list) -> object:
    """A variant group as a value of the variant grid: one variant as its dict, several as
    their list (``grok_core.trial_config.variant_group``)."""
    return variants[0] if len(variants) == 1 else variants


def _variant_chunks(space: dict, max_cohort: int) -> tuple[Optional[list], int]:
    """(the variant grid's values with every group cut into chunks of at most ``max_cohort``
    variants, nearly equal; None without a variant grid) and the largest chunk's size."""
    values = space.get(VARIANT_KEY)
    if not is_grid(values):
        return None, 1
    groups = [v if isinstance(v, list) else [v] for v in values["grid_search"]]
    largest = max(map(len, groups))
    size = _ceil_div(largest, _ceil_div(largest, max_cohort)) if max_cohort >= 1 else largest
    chunks = [chunk for group in groups for chunk in _chunks(group, size)]
    return chunks, max(map(len, chunks))


def split_cohorts(space: dict, max_cohort: int, slots: int = 1) -> dict:
    """``space`` with each cell's cohort (seeds x rates x the variants of a group; seeds alone
    for dense runs) split into trials by new grid axes over groups of seeds, chunks of rates
    and, only where one seed at one rate would exceed ``max_cohort``, chunks of a variant
    group, as ``plan_split`` chooses: no trial above ``max_cohort`` members, and the ``slots``
    (parallel trials the cluster holds) kept busy. Variants are grouped first
    (``group_variants``)."""
    space = group_variants(space)
    seeds, rates = space.get("seeds"), space.get("rates")
    if not isinstance(seeds, list):
        return space
    ticket = bool(space_recipes(space) & set(MASK_RECIPES))
    n_rates = len(rates) if ticket and isinstance(rates, list) else (1 if ticket else None)
    chunks, variants = _variant_chunks(space, max_cohort)
    split = dict(space)
    if chunks is not None:
        split[VARIANT_KEY] = {"grid_search": [_grid_value(chunk) for chunk in chunks]}
    cells = math.prod(len(values) for _, values in grid_axes(split))
    seeds_per, rates_per = plan_split(len(seeds), n_rates, max_cohort, slots, cells, variants)
    if seeds_per < len(seeds):
        split["seeds"] = {"grid_search": _chunks(seeds, seeds_per)}
    if ticket and isinstance(rates, list) and rates_per < len(rates):
        split["rates"] = {"grid_search": _chunks(rates, rates_per)}
    return split
