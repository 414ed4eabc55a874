"""The edges of the window of generalising pruning rates, per seed and for the population.

Near an edge the outcome depends on the seed (and the step budget), so an edge is a property of
the seeds' distribution, estimated from every member outcome, never by taking the best trial:

* per seed: the largest (smallest) generalising rate, bracketed by the nearest failing rate
  above (below) it, ``seed_edges``;
* for the population: the logistic fit of ``critical_ratio.fit`` on the window's falling
  (rising) flank, with a 95 % interval, ``estimate_edges``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Optional

import pandas as pd

from .fit import RESOLUTION, ThresholdFit, fit_threshold, flank


@dataclass
class CriticalEstimate:
    """Both edges of the window, per seed and for the population, from member outcomes."""

    upper: ThresholdFit   # the paper's critical pruning ratio
    lower: ThresholdFit   # the least pruning at which a ticket generalises without weight decay
    per_seed: pd.DataFrame
    seeds_without_window: list[int]
    members: int
    trials: int
    resolution: float = RESOLUTION

    def summary_lines(self) -> list[str]:
        """What a user reads: both edges, the seeds' own edges and the seeds without a window."""
        if self.members and self.upper.status == "below" and self.lower.status == "above":
            return [f"no window: no member generalised at any tested rate ({self.trials} "
                    f"trials, {self.members} members; seeds {len(self.per_seed)} of "
                    f"{len(self.per_seed)} without a window)"]
        lines = [f"critical pruning ratio (upper edge of the window, P(generalise)=0.5): "
                 f"{self.upper.describe()}, from {self.upper.n} member outcomes on the falling "
                 f"flank ({self.trials} trials, {self.members} members; seeds without a window "
                 "are not in the fits)",
                 f"lower edge (least pruning that generalises without weight decay): "
                 f"{self.lower.describe()}, from {self.lower.n} outcomes"]
        for row in self.per_seed.itertuples():
            if not row.has_window:
                lines.append(f"  seed {row.seed}: no window (no generalising rate in "
                             f"{row.outcomes} outcomes)")
                continue
            inside = (f"; {row.failures_inside} failing rate(s) inside its window"
                      if row.failures_inside else "")
            lines.append(f"  seed {row.seed}: upper edge {_bracket(row.upper_edge, row.upper_fail, '>')}"
                         f", lower edge {_bracket(row.lower_edge, row.lower_fail, '<')}{inside}")
        seeds = len(self.per_seed)
        lines.append(f"seeds without a window: {len(self.seeds_without_window)} of {seeds}"
                     + (f" ({', '.join(map(str, self.seeds_without_window))})"
                        if self.seeds_without_window else ""))
        return lines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: both fits, per-seed edges, counts."""
        per_seed = json.loads(self.per_seed.to_json(orient="records"))
        return {"upper": self.upper.to_dict(), "lower": self.lower.to_dict(),
                "per_seed": per_seed, "seeds_without_window": self.seeds_without_window,
                "members": self.members, "trials": self.trials, "resolution": self.resolution}


def _bracket(edge: float, fail: float, side: str) -> str:
    if fail != fail:  # NaN: nothing failed beyond the edge
        return f"{edge:.3f} (no failing rate {'above' if side == '>' else 'below'} it)"
    return f"{edge:.3f} (fails at {fail:.3f})"


SEED_EDGE_COLUMNS = ["seed", "outcomes", "generalised", "has_window", "upper_edge", "upper_fail",
                     "upper_resolved", "lower_edge", "lower_fail", "lower_resolved",
                     "failures_inside"]


def seed_edges(members: pd.DataFrame, resolution: float = RESOLUTION) -> pd.DataFrame:
    """One row per seed: its largest generalising rate (``upper_edge``) and the smallest
    failing rate above it (``upper_fail``; NaN if none), resolved when they are at most
    ``resolution`` apart; the same for the lower edge; ``has_window`` False when the seed never
    generalised; ``failures_inside``: failing rates between its lower and upper edge (near an
    edge a seed's outcome need not be monotone in k: a mask a little sparser can generalise
    again). ``members`` needs columns seed, pruning_rate, generalised."""
    rows = []
    for seed, group in members.groupby("seed", sort=True):
        rates = group["pruning_rate"].to_numpy(dtype=float)
        ok = group["generalised"].to_numpy(dtype=bool)
        row: dict[str, Any] = {"seed": int(seed), "outcomes": int(len(group)),
                               "generalised": int(ok.sum()), "has_window": bool(ok.any())}
        nan = math.nan
        if ok.any():
            upper, lower = rates[ok].max(), rates[ok].min()
            above, below = rates[~ok & (rates > upper)], rates[~ok & (rates < lower)]
            upper_fail = above.min() if above.size else nan
            lower_fail = below.max() if below.size else nan
            row.update(upper_edge=upper, upper_fail=upper_fail,
                       upper_resolved=bool(upper_fail - upper <= resolution + 1e-9),
                       lower_edge=lower, lower_fail=lower_fail,
                       lower_resolved=bool(lower - lower_fail <= resolution + 1e-9),
                       failures_inside=int((~ok & (rates > lower) & (rates < upper)).sum()))
        else:
            row.update(upper_edge=nan, upper_fail=nan, upper_resolved=False, lower_edge=nan,
                       lower_fail=nan, lower_resolved=False, failures_inside=0)
        rows.append(row)
    return pd.DataFrame(rows, columns=SEED_EDGE_COLUMNS)


def estimate_edges(members: pd.DataFrame, resolution: float = RESOLUTION,
                   trials: Optional[int] = None) -> CriticalEstimate:
    """Both edges from member outcomes (columns seed, pruning_rate, generalised; ``trial``
    counts the trials if present). The population fits use the seeds that have a window: a
    seed that generalised at no tested rate says nothing about where an edge lies (its
    failures would only pull P(generalise) below 1 everywhere); such seeds are counted in
    ``seeds_without_window`` instead. Outcomes of unknown seed all count."""
    in_fit = window_seeds(members)
    rates = members.loc[in_fit, "pruning_rate"].to_numpy(dtype=float)
    ok = members.loc[in_fit, "generalised"].to_numpy(dtype=float)
    upper_side, lower_side = flank(rates, ok, upper=True), flank(rates, ok, upper=False)
    upper = fit_threshold(rates[upper_side], ok[upper_side], resolution=resolution)
    lower = fit_threshold(rates[lower_side], ok[lower_side], falling=False,
                          resolution=resolution)
    per_seed = seed_edges(members, resolution)
    if trials is None:
        trials = int(members["trial"].nunique()) if "trial" in members.columns else len(members)
    return CriticalEstimate(upper, lower, per_seed,
                            [int(s) for s in per_seed.loc[~per_seed["has_window"], "seed"]],
                            int(len(members)), trials, resolution)


def window_seeds(members: pd.DataFrame) -> pd.Series:
    """Boolean selection of the outcomes whose seed generalised at some tested rate (or whose
    seed is unknown)."""
    if members.empty or "seed" not in members.columns:
        return pd.Series(True, index=members.index)
    generalised = members["generalised"].astype(bool)
    with_window = set(members.loc[generalised, "seed"].dropna().tolist())
    return members["seed"].isna() | members["seed"].isin(with_window)


