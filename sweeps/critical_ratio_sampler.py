"""Searching the critical pruning ratio with Optuna: our threshold sampler, the samplers to
compare it with, and the search over any objective (training in ``sweeps.critical_ratio_search``).

The objective contract (what a trial does, whoever runs it: a plain ``study.optimize``, or
Ray Tune through ``OptunaSearch``): it calls ``trial.suggest_float("pruning_rate", low,
high)``, trains (or simulates) one or more members at that rate, sets the user attribute
``n_members`` (1 if absent) and optionally ``members`` (a list of dicts with ``seed``,
``pruning_rate``, ``generalised``, ``t_gen`` ...), and returns the fraction of its members that
generalised. The study's direction is ``maximize``; its best trial means nothing here: the
answer is the fit of ``analysis.critical_ratio`` over every member outcome.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from analysis.critical_ratio import (RESOLUTION, aggregate_outcomes, edge_grid, flank,
                               log_likelihood, trial_members, width_grid, window_seeds)
from grok_core.config import ConfigError, choice
from .trainable import RATE_PARAM as PARAM
SAMPLERS = ("threshold", "tpe", "random", "grid")
# A trial's rate is kept at least this many resolutions from a rate a running trial has (so
# parallel trials never pile up on one rate) and from one already finished (a cohort of the same
# seeds at the same rate would only repeat its outcome).
PENDING_GAP = 0.25
DONE_GAP = 0.05
# Thompson draws place a rate where the drawn curve has P(generalise) in this range: the
# informative part of the flank, for the edge's location and for its width.
DRAW_P = (0.2, 0.8)


def check_range(low: float, high: float) -> None:
    """ConfigError unless 0 <= low < high < 1 (pruning rates)."""
    for key, value in (("--low", low), ("--high", high)):
        if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
            raise ConfigError(f"{key}: a pruning rate must be in [0, 1), got {value}")
    if not low < high:
        raise ConfigError(f"--low {low} must be below --high {high}")


def _van_der_corput(i: int) -> float:
    value, denominator = 0.0, 1.0
    while i:
        denominator *= 2
        i, bit = divmod(i, 2)
        value += bit / denominator
    return value


def scan_order(low: float, high: float, points: int) -> list[float]:
    """``points`` evenly spaced rates from low to high, in an order that spreads any prefix
    over the range (van der Corput), so parallel trials of the scan cover it evenly."""
    grid = np.round(np.linspace(low, high, points), 6)
    return [float(grid[i]) for i in sorted(range(points), key=_van_der_corput)]


def trial_outcomes(trials: Sequence[FrozenTrial]) -> tuple[np.ndarray, np.ndarray]:
    """(rate, generalised) per member of the finished trials, left out the members of seeds
    that generalised nowhere: the outcomes ``analysis.critical_ratio`` fits, so the sampler aims at
    the edge the report shows (``trial_members``, ``window_seeds``)."""
    members = trial_members(trials)
    kept = members[window_seeds(members)]
    return (kept["pruning_rate"].to_numpy(dtype=float),
            kept["generalised"].to_numpy(dtype=float))


class ThresholdSampler(optuna.samplers.BaseSampler):
    """Puts trials where the edge of P(generalise | pruning_rate) is still uncertain.

    1. **Scan**: a coarse grid over [low, high] (every 0.05, 5-11 points) in a spreading order,
       which locates the window of generalising rates.
    2. **Edge**: Thompson sampling on the window's falling flank (the upper edge; every
       ``lower_every``-th trial the rising flank, when the scan found a lower edge): draw an
       (edge, width) pair from the flank's likelihood over a grid, then a rate where that curve
       has P(generalise) in [0.2, 0.8]. While the outcomes are separated this bisects the gap
       between the last success and the first failure; afterwards it samples the edge's
       uncertainty, which shrinks as trials finish.

    Stateless: every decision is computed from the study's stored trials (finished ones give
    outcomes; running ones are avoided by a quarter resolution), and randomness comes from
    (``seed``, trial number). A resumed study therefore continues where it was and never
    starts its scan over, in plain Optuna and inside Ray Tune alike. Other parameters a trial
    suggests (e.g. which seed) are drawn at random."""

    def __init__(self, low: float, high: float, seed: int = 0, resolution: float = RESOLUTION,
                 scan_points: Optional[int] = None, lower_every: int = 4) -> None:
        check_range(low, high)
        if resolution <= 0:
            raise ConfigError(f"resolution: must be positive, got {resolution}")
        self.low, self.high, self.seed, self.resolution = float(low), float(high), seed, resolution
        points = scan_points or min(11, max(5, round((high - low) / 0.05) + 1))
        self.scan = scan_order(self.low, self.high, points)
        self.lower_every = lower_every

    # --- Optuna's sampler interface ---------------------------------------------------------
    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution):
        rng = np.random.default_rng([self.seed, trial.number])
        if param_name != PARAM:
            fallback = optuna.samplers.RandomSampler(seed=int(rng.integers(2**31)))
            return fallback.sample_independent(study, trial, param_name, param_distribution)
        trials = study.get_trials(deepcopy=False)
        rates, outcomes = trial_outcomes(trials)
        pending = [float(t.params[PARAM]) for t in trials
                   if t.state == TrialState.RUNNING and t.number != trial.number
                   and PARAM in t.params]
        # every finished rate counts as tried, also those whose outcomes the fit leaves out
        # (seeds that generalised nowhere): else the scan restarts while no seed has a window
        finished = [float(t.params[PARAM]) for t in trials
                    if t.state == TrialState.COMPLETE and PARAM in t.params]
        rate = self.next_rate(rates, outcomes, pending, trial.number, rng, finished)
        low = max(self.low, getattr(param_distribution, "low", self.low))
        high = min(self.high, getattr(param_distribution, "high", self.high))
        return float(min(max(rate, low), high))

    # --- the decision -----------------------------------------------------------------------
    def next_rate(self, rates: np.ndarray, outcomes: np.ndarray, pending: Sequence[float],
                  number: int, rng: np.random.Generator, finished: Sequence[float] = ()
                  ) -> float:
        """The next trial's rate from the finished outcomes, the running trials' rates and
        the rates of every finished trial (``finished``)."""
        tried = [*rates.tolist(), *finished, *pending]
        for point in self.scan:
            if all(abs(point - r) > 1e-9 for r in tried):
                return point
        if not outcomes.any() or outcomes.all():
            return self._widest_gap(tried)  # no window (or no edge) yet: fill the range
        upper_side, lower_side = flank(rates, outcomes, True), flank(rates, outcomes, False)
        upper_has_edge = not outcomes[upper_side].all()
        lower_has_edge = not outcomes[lower_side].all()
        want_lower = (self.lower_every > 0 and number % self.lower_every == self.lower_every - 1)
        if lower_has_edge and (want_lower or not upper_has_edge):
            side, falling = lower_side, False
        elif upper_has_edge:
            side, falling = upper_side, True
        else:
            return self._widest_gap(tried)
        return self._thompson(rates[side], outcomes[side], falling, pending, rates, rng)

    def _widest_gap(self, tried: Sequence[float]) -> float:
        points = sorted({self.low, self.high, *[min(max(t, self.low), self.high) for t in tried]})
        gaps = [(b - a, (a + b) / 2) for a, b in zip(points, points[1:])]
        return max(gaps)[1] if gaps else (self.low + self.high) / 2

    def _thompson(self, rates: np.ndarray, outcomes: np.ndarray, falling: bool,
                  pending: Sequence[float], done: np.ndarray, rng: np.random.Generator) -> float:
        x, successes, trials = aggregate_outcomes(rates if falling else -rates, outcomes)
        edges = edge_grid(x, self.resolution, points=241)
        widths = width_grid(float(np.ptp(x)), self.resolution)
        surface = log_likelihood(x, successes, trials, edges, widths)
        weights = np.exp(surface - surface.max()).ravel()
        weights /= weights.sum()
        best, best_gap = None, -1.0
        for _ in range(64):
            index = rng.choice(weights.size, p=weights)
            edge, width = edges[index // widths.size], widths[index % widths.size]
            q = rng.uniform(*DRAW_P)
            rate = edge + width * math.log((1 - q) / q)  # P(generalise) = q on this curve
            rate = -rate if not falling else rate
            rate = round(min(max(rate, self.low), self.high), 4)
            gap = min([abs(rate - p) / PENDING_GAP for p in pending]
                      + [abs(rate - d) / DONE_GAP for d in done] + [math.inf]) / self.resolution
            if gap >= 1.0:
                return rate
            if gap > best_gap:
                best, best_gap = rate, gap
        return float(best)


def make_sampler(name: str, low: float, high: float, seed: int = 0,
                 resolution: float = RESOLUTION, finished: int = 0
                 ) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` (one of ``SAMPLERS``) for a search over [low, high].

    ``finished``: trials the study already holds. Optuna's seeded samplers replay the same
    start-up draws whenever a study is resumed with the same seed, so a resumed TPE or random
    search would repeat its first rates; their seed is offset by it. ``threshold`` needs no
    offset (it derives each draw from the trial number); ``grid`` walks the rates at the
    resolution, skipping those already run."""
    choice("--sampler", name, SAMPLERS)
    check_range(low, high)
    if name == "threshold":
        return ThresholdSampler(low, high, seed=seed, resolution=resolution)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed + finished)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed + finished)
    count = int(math.floor((high - low) / resolution + 1e-9)) + 1
    grid = [round(low + i * resolution, 10) for i in range(count)]
    return optuna.samplers.GridSampler({PARAM: grid}, seed=seed)


def search(objective: Callable[[optuna.Trial], float], low: float, high: float,
           trials: int, sampler: str = "threshold", seed: int = 0,
           resolution: float = RESOLUTION, study_name: Optional[str] = None,
           storage: Optional[str] = None) -> optuna.Study:
    """Run a critical-ratio search with a plain Optuna study (no Ray) until it holds
    ``trials`` finished trials: the same samplers and the same study contents as
    ``grok critical-ratio``, for objectives that do not train (tests, benchmarks) or for
    users with their own training loop. Resumes the study if ``storage`` already has it."""
    if trials < 1:
        raise ConfigError(f"--trials: must be at least 1, got {trials}")
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                load_if_exists=True)
    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    study.sampler = make_sampler(sampler, low, high, seed, resolution, finished)
    if finished < trials:
        study.optimize(objective, n_trials=trials - finished)
    return study
