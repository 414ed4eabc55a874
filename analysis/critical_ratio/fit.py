"""The threshold fit of the critical pruning ratio (App. E): P(generalise | k) on a flank of the
window of pruning rates, by maximum likelihood, with profile-likelihood intervals.

Without weight decay a grokking ticket generalises only inside a *window* of pruning rates k:
too little pruning leaves it memorising, too much leaves it unable to fit. The paper's critical
pruning ratio is the window's **upper edge**; the **lower edge** is the least pruning at which a
ticket generalises without weight decay. ``fit_threshold`` fits a logistic to the outcomes of
one flank; the per-seed edges and the estimate of both edges are ``critical_ratio.edges``.
Both the sampler (``sweeps.critical_ratio_sampler``) and the tables use these functions, so
what a search aims at is what its report shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

RESOLUTION = 0.01  # the paper stepped k by 0.01
# The logistic width s is kept >= resolution / 20 (0.0005 at the default resolution): with
# perfectly separated outcomes the unconstrained maximum-likelihood width is 0 and the
# estimate is any point between the last success and the first failure; the bound makes the
# likelihood peak in the middle of that gap and lets the interval span it.
MIN_WIDTH_PER_RESOLUTION = 1 / 20
CHI2_95_1DOF = 3.841458820694124  # profile-likelihood interval of the edge (s profiled out)
CHI2_95_2DOF = 5.991464547107979  # joint region of (edge, width): the band of the fitted curve
WIDTHS = 40  # grid points of the width s (log-spaced)


@dataclass(frozen=True)
class ThresholdFit:
    """A logistic fit of P(generalise | k) on one flank of the window.

    ``estimate``: the rate where P = 0.5 (NaN when the edge lies outside the tested rates);
    ``ci_low`` / ``ci_high``: its 95 % profile-likelihood interval (+-inf where the likelihood
    does not bound it within the grid); ``n``: member outcomes used; ``width``: the fitted
    logistic scale s (P goes from 0.73 to 0.27 over 2 s); ``status``: ``ok``, ``above`` / ``below``
    (the edge lies above / below every tested rate: on a falling flank every outcome, or none,
    generalised) or ``empty``; ``falling``: the flank (True: P falls as k rises)."""

    estimate: float
    ci_low: float
    ci_high: float
    n: int
    width: float = math.nan
    status: str = "ok"
    falling: bool = True
    region: np.ndarray = field(default_factory=lambda: np.empty((0, 2)), repr=False,
                               compare=False)  # (edge, width) pairs of the joint 95 % region

    def probability(self, rates: Sequence[float]) -> np.ndarray:
        """The fitted P(generalise) at ``rates`` (NaN if there is no fit)."""
        return _logistic(np.asarray(rates, dtype=float), self.estimate, self.width, self.falling)

    def band(self, rates: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise lowest and highest P(generalise) at ``rates`` over the joint 95 % region
        of (edge, width): the band drawn around the fitted curve."""
        rates = np.asarray(rates, dtype=float)
        if len(self.region) == 0:
            nan = np.full(rates.shape, math.nan)
            return nan, nan
        curves = _logistic(rates[None, :], self.region[:, :1], self.region[:, 1:], self.falling)
        return curves.min(axis=0), curves.max(axis=0)

    def describe(self, digits: int = 3) -> str:
        """'0.803 [0.795, 0.811]' (or where the edge lies when it is outside the rates)."""
        if self.status == "empty":
            return "no outcomes"
        if self.status in ("above", "below"):
            above = self.status == "above"
            bound = self.ci_low if above else self.ci_high
            return (f"{self.status} every tested rate ({'>' if above else '<'} "
                    f"{bound:.{digits}f})")
        low = "-inf" if math.isinf(self.ci_low) else f"{self.ci_low:.{digits}f}"
        high = "inf" if math.isinf(self.ci_high) else f"{self.ci_high:.{digits}f}"
        return f"{self.estimate:.{digits}f} [{low}, {high}]"

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON: infinities and NaN as strings)."""
        return {"estimate": _json_float(self.estimate), "ci_low": _json_float(self.ci_low),
                "ci_high": _json_float(self.ci_high), "n": self.n,
                "width": _json_float(self.width), "status": self.status, "falling": self.falling}


def _json_float(value: float) -> Any:
    return value if math.isfinite(value) else str(value)


def _logistic(rates, edge, width, falling: bool) -> np.ndarray:
    z = (np.asarray(rates, dtype=float) - edge) / width
    return 1.0 / (1.0 + np.exp(np.clip(z if falling else -z, -500, 500)))


def aggregate_outcomes(rates: Sequence[float], generalised: Sequence[float]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct rates, successes, trials) of per-member outcomes (rates rounded to 1e-9)."""
    x = np.round(np.asarray(rates, dtype=float), 9)
    y = np.asarray(generalised, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"rates and generalised differ in length ({x.size} vs {y.size})")
    distinct, index = np.unique(x, return_inverse=True)
    return distinct, np.bincount(index, weights=y), np.bincount(index).astype(float)


def log_likelihood(x: np.ndarray, successes: np.ndarray, trials: np.ndarray,
                   edges: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """[edges, widths] binomial log-likelihood of a falling logistic P = 1/(1+exp((k-r)/s))."""
    z = (x[None, None, :] - edges[:, None, None]) / widths[None, :, None]
    # log P = -softplus(z) and log(1 - P) = -softplus(-z) = -softplus(z) + z
    return ((trials - successes) * z - trials * np.logaddexp(0.0, z)).sum(axis=-1)


def width_grid(span: float, resolution: float = RESOLUTION) -> np.ndarray:
    """Log-spaced widths s from resolution/20 to half the span of the data (at least 0.05)."""
    return np.geomspace(resolution * MIN_WIDTH_PER_RESOLUTION, max(0.05, span / 2), WIDTHS)


def edge_grid(x: np.ndarray, resolution: float = RESOLUTION, points: int = 121) -> np.ndarray:
    """Candidate edges: the data's range padded by a tenth of a unit (or five resolutions)."""
    pad = max(0.1, 5 * resolution)
    return np.linspace(x.min() - pad, x.max() + pad, points)


def fit_threshold(rates: Sequence[float], generalised: Sequence[float], *,
                  falling: bool = True, resolution: float = RESOLUTION) -> ThresholdFit:
    """Maximum-likelihood logistic fit of P(generalise | k) on one flank of the window.

    ``rates`` and ``generalised`` have one entry per member outcome (``generalised`` 0/1); on
    the falling flank (default) P falls as the rate rises. Returns a ``ThresholdFit``: the rate
    where P = 0.5, its 95 % profile-likelihood interval (the width profiled out, so the
    interval carries the uncertainty of the width too), the fitted width and ``n``.
    Perfectly separated outcomes are handled by the lower bound on the width
    (``MIN_WIDTH_PER_RESOLUTION``): the estimate is then the middle of the gap between the
    last success and the first failure. All successes (or none): no edge within the tested
    rates; ``status`` says which side it lies on and the estimate is NaN.
    """
    x, successes, trials = aggregate_outcomes(rates, generalised)
    n = int(trials.sum())
    if n == 0:
        return ThresholdFit(math.nan, -math.inf, math.inf, 0, status="empty", falling=falling)
    if falling:
        return _fit_falling(x, successes, trials, resolution)
    fit = _fit_falling(-x, successes, trials, resolution)  # a rising flank is a falling one in -k
    region = fit.region * np.array([-1.0, 1.0]) if len(fit.region) else fit.region
    status = {"above": "below", "below": "above"}.get(fit.status, fit.status)
    return ThresholdFit(-fit.estimate, -fit.ci_high, -fit.ci_low, fit.n, fit.width, status,
                        False, region)


def _fit_falling(x: np.ndarray, successes: np.ndarray, trials: np.ndarray,
                 resolution: float) -> ThresholdFit:
    """``fit_threshold`` of aggregated outcomes on a falling flank (at least one outcome)."""
    n = int(trials.sum())
    if successes.sum() == n:
        return ThresholdFit(math.nan, float(x.max()), math.inf, n, status="above")
    if successes.sum() == 0:
        return ThresholdFit(math.nan, -math.inf, float(x.min()), n, status="below")
    widths = width_grid(float(np.ptp(x)), resolution)
    coarse = edge_grid(x, resolution)
    surface = log_likelihood(x, successes, trials, coarse, widths)
    profile = surface.max(axis=1)
    near = coarse[2 * (profile.max() - profile) <= CHI2_95_2DOF + 4.0]
    step = coarse[1] - coarse[0]
    fine = np.arange(near.min() - step, near.max() + step, resolution / 40)
    surface = log_likelihood(x, successes, trials, fine, widths)
    profile = surface.max(axis=1)
    best = float(profile.max())
    peak = np.flatnonzero(profile >= best - 1e-9)
    estimate = float(fine[peak[len(peak) // 2]])
    inside = fine[2 * (best - profile) <= CHI2_95_1DOF]
    ci_low = -math.inf if inside.min() <= coarse[0] else float(inside.min())
    ci_high = math.inf if inside.max() >= coarse[-1] else float(inside.max())
    edge_index, width_index = np.nonzero(2 * (best - surface) <= CHI2_95_2DOF)
    region = np.stack([fine[edge_index], widths[width_index]], axis=1)
    width = float(widths[np.argmax(surface[peak[len(peak) // 2]])])
    return ThresholdFit(estimate, ci_low, ci_high, n, width, "ok", True, region)


def window_centre(rates: Sequence[float], generalised: Sequence[float]) -> Optional[float]:
    """The middle of the window: halfway between the smallest and the largest generalising
    rate (None if no outcome generalised). Outcomes at or above it make the falling flank (the
    upper edge), those at or below it the rising flank (the lower edge)."""
    rates, generalised = np.asarray(rates, dtype=float), np.asarray(generalised, dtype=bool)
    if not generalised.any():
        return None
    return float((rates[generalised].min() + rates[generalised].max()) / 2)


def flank(rates: Sequence[float], generalised: Sequence[float], upper: bool = True
          ) -> np.ndarray:
    """Boolean selection of the outcomes on the window's falling (``upper``) or rising flank;
    with no generalising outcome, every outcome (the edge is then beyond the tested rates)."""
    rates = np.asarray(rates, dtype=float)
    centre = window_centre(rates, generalised)
    if centre is None:
        return np.ones(rates.shape, dtype=bool)
    return rates >= centre - 1e-12 if upper else rates <= centre + 1e-12


