"""Param-space surgery for sweeps: ``--set`` overrides, grid expansion, validation of every
cell, and splitting cohorts into trials (to respect ``--max-cohort`` and to fill the slots).

A space is the plain dict a ``search_spaces`` module returns: an ``ExperimentConfig`` in nested
form plus ``seeds`` and ``rates``, where any value may be a ``tune.grid_search``. Nothing here
starts Ray or imports torch.
"""
from __future__ import annotations

import copy
import math
from typing import Iterable, Optional, Sequence

from grok_core.config import (MASK_RECIPES, ConfigError, ExperimentConfig, check_pruning_rate,
                              typed_override)
from grok_core.trial_config import split_trial_config
from search_spaces import expand_cells, get_study, grid_axes, set_path, space_recipes


def apply_overrides(space: dict, overrides: Iterable[str]) -> dict:
    """``--set key=value`` on every trial: the typed value replaces whatever (grid or not) is
    there; unknown keys and ill-typed values raise ConfigError."""
    space = copy.deepcopy(space)
    for text in overrides:
        key, value = typed_override(text)
        set_path(space, key, value)
    return space


def validate_cell(cell: dict) -> ExperimentConfig:
    """The cell's typed config (ConfigError names the bad key); seeds and rates checked too."""
    seeds = cell.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds: expected a non-empty list of non-negative integers, got {seeds!r}")
    for rate in cell.get("rates") or []:
        check_pruning_rate(rate, "rates")
    config, _, _ = split_trial_config(cell)
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
        validate_cell(cell)
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


def _chunks(values: list, size: int) -> list[list]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def plan_split(n_seeds: int, n_rates: Optional[int], max_cohort: int, slots: int,
               cells: int = 1) -> tuple[int, int]:
    """(seeds per trial, rates per trial) for a cell of ``n_seeds`` x ``n_rates`` members
    (``n_rates`` None: a dense cell) that ``cells`` cells share ``slots`` slots with.

    Every split with at most ``max_cohort`` members per trial is costed by its makespan on the
    cell's share of the slots: its trials (a trial trains its own dense runs unless the rates
    are chunked, when several trials share them and a dense phase trains them first) scheduled
    longest first. The cheapest wins; among equals, the one without a dense phase, then the one
    with fewer trials (larger cohorts are cheaper per member, markedly so on a GPU)."""
    if max_cohort < 1:
        raise ConfigError(f"--max-cohort: must be at least 1, got {max_cohort}")
    share = max(1, slots // max(1, cells))
    rates = n_rates or 1
    best: Optional[tuple[float, bool, int, int, int]] = None
    for seeds_per in range(1, n_seeds + 1):
        for rates_per in range(1, rates + 1):
            if seeds_per * rates_per > max_cohort:
                continue
            seed_groups = _chunks(list(range(n_seeds)), seeds_per)
            rate_groups = _chunks(list(range(rates)), rates_per)
            if n_rates is None:
                time = makespan([DENSE_COST * len(g) for g in seed_groups], share)
            elif len(rate_groups) == 1:  # each trial trains its own dense runs first
                time = makespan([len(g) * (DENSE_COST + TICKET_COST * rates)
                                  for g in seed_groups], share)
            else:  # dense phase first (one dense run per slot), then the ticket trials
                time = (makespan([DENSE_COST] * n_seeds, share)
                        + makespan([TICKET_COST * len(s) * len(r) for s in seed_groups
                                     for r in rate_groups], share))
            trials = len(seed_groups) * len(rate_groups)
            dense_phase = n_rates is not None and len(rate_groups) > 1  # a Tuner more (~4 s)
            candidate = (round(time, 9), dense_phase, trials, -seeds_per, rates_per)
            if best is None or candidate < best:
                best = candidate
    assert best is not None
    return -best[3], best[4]


def split_cohorts(space: dict, max_cohort: int, slots: int = 1) -> dict:
    """``space`` with each cell's cohort (seeds x rates; seeds alone for dense runs) split into
    trials by new grid axes over groups of seeds and chunks of rates, as ``plan_split``
    chooses: no trial above ``max_cohort`` members, and the ``slots`` (parallel trials the
    cluster holds) kept busy."""
    seeds, rates = space.get("seeds"), space.get("rates")
    if not isinstance(seeds, list):
        return space
    ticket = bool(space_recipes(space) & set(MASK_RECIPES))
    n_rates = len(rates) if ticket and isinstance(rates, list) else (1 if ticket else None)
    cells = math.prod(len(values) for _, values in grid_axes(space))
    seeds_per, rates_per = plan_split(len(seeds), n_rates, max_cohort, slots, cells)
    split = dict(space)
    if seeds_per < len(seeds):
        split["seeds"] = {"grid_search": _chunks(seeds, seeds_per)}
    if ticket and isinstance(rates, list) and rates_per < len(rates):
        split["rates"] = {"grid_search": _chunks(rates, rates_per)}
    return split
