"""The critical pruning ratio (App. E): fits of P(generalise | k) and the edges of the window.

Without weight decay a grokking ticket generalises only inside a *window* of pruning rates k: too
little pruning leaves it memorising, too much leaves it unable to fit. The paper's critical
pruning ratio is the window's **upper edge**; the **lower edge** is the least pruning at which a
ticket generalises without weight decay. Near an edge the outcome depends on the seed (and the
step budget), so an edge is a property of the seeds' distribution, estimated from every member
outcome, never by taking the best trial:

* per seed: the largest (smallest) generalising rate, bracketed by the nearest failing rate
  above (below) it, ``seed_edges``;
* for the population: a logistic fit of P(generalise | k) on the window's falling (rising)
  flank by maximum likelihood, ``fit_threshold``, with a 95 % profile-likelihood interval.

Both the searcher (``sweeps.critical``) and the tables (``load``, ``critical_ratios``) use
these functions, so what a search aims at is what its report shows.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

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


# --- searches on disk ---------------------------------------------------------------------------
SPEC_FILE = "critical.json"      # written by sweeps.critical_launch: what the search searches
STUDY_INFO_FILE = "study.json"   # the study's name (and its storage URL unless the default)
DEFAULT_STUDY_FILE = "study.db"  # the SQLite study next to a search's files, by default
MEMBER_TABLE = "members.parquet"
ESTIMATE_FILE = "estimate.json"
MEMBER_COLUMNS = ["trial", "seed", "pruning_rate", "generalised", "t_gen", "t_mem",
                  "final_test_acc", "steps_run"]


def study_members(study) -> pd.DataFrame:
    """One row per member outcome of the study's finished trials (``trial_members``)."""
    return trial_members(study.get_trials(deepcopy=False))


def trial_members(trials) -> pd.DataFrame:
    """One row per member outcome of the finished ones among Optuna ``trials``
    (``MEMBER_COLUMNS``): from a trial's ``members`` user attribute where it has one, else
    ``n_members`` outcomes at its rate from its value, of the seed its user attribute or
    parameter ``seed`` names if any (the objective contract of ``sweeps.critical``)."""
    from optuna.trial import TrialState

    rows = []
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        rate = trial.params.get("pruning_rate")
        if rate is None or trial.value is None:
            continue
        members = trial.user_attrs.get("members")
        if members:
            for member in members:
                rows.append({"trial": trial.number, **member,
                             "pruning_rate": float(member.get("pruning_rate", rate)),
                             "generalised": bool(member["generalised"])})
            continue
        n = int(trial.user_attrs.get("n_members", 1))
        successes = int(round(float(trial.value) * n))
        seed = trial.user_attrs.get("seed", trial.params.get("seed"))
        rows += [{"trial": trial.number, "seed": seed, "pruning_rate": float(rate),
                  "generalised": i < successes} for i in range(n)]
    frame = pd.DataFrame(rows)
    for column in MEMBER_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=float)
    frame = frame[MEMBER_COLUMNS + [c for c in frame.columns if c not in MEMBER_COLUMNS]]
    return frame.astype({"generalised": bool}) if not frame.empty else frame


@dataclass
class CriticalSearch:
    """A critical-ratio search: its settings (``spec``), one row per member outcome
    (``members``) and the estimate of both edges (``estimate``)."""

    name: str
    path: str
    spec: dict
    members: pd.DataFrame
    estimate: CriticalEstimate
    study_name: Optional[str] = None
    study_storage: Optional[str] = None
    trials: int = 0
    study: Any = field(default=None, repr=False)

    @property
    def steps(self) -> Optional[int]:
        """The tickets' step budget (part of what the estimate means)."""
        return (self.spec.get("template", {}).get("train", {}) or {}).get("steps")

    def settings(self) -> dict[str, Any]:
        """The search's settings as flat columns: range, resolution, seeds, the step budget and
        every ticket / dense-run setting that differs from the defaults."""
        from grok_core.config import ExperimentConfig, flatten_settings

        template = dict(self.spec.get("template", {}))
        seeds = template.pop("seeds", [])
        defaults = flatten_settings(ExperimentConfig().to_dict())
        changed = {k: v for k, v in flatten_settings(template).items() if defaults.get(k) != v}
        steps = self.steps if self.steps is not None else defaults["train.steps"]
        return {"low": self.spec.get("low"), "high": self.spec.get("high"),
                "resolution": self.spec.get("resolution"),
                "seeds": ",".join(map(str, seeds)), "steps": steps, **changed}

    def summary_lines(self) -> list[str]:
        """Header (budget, range, seeds) and the estimate's lines."""
        settings = self.settings()
        head = (f"search {self.name}: k in [{settings['low']}, {settings['high']}] at "
                f"resolution {settings['resolution']}, seeds {settings['seeds']}, tickets of "
                f"{settings['steps']} steps without weight decay")
        if self.members.empty:
            return [head, "no finished trials yet"]
        return [head, *self.estimate.summary_lines()]

    def row(self) -> dict[str, Any]:
        """One row of ``critical_ratios``: settings, both edges with intervals, counts."""
        e = self.estimate
        return {"name": self.name, **self.settings(),
                "critical_ratio": e.upper.estimate, "ci_low": e.upper.ci_low,
                "ci_high": e.upper.ci_high, "upper_status": e.upper.status,
                "lower_edge": e.lower.estimate, "lower_ci_low": e.lower.ci_low,
                "lower_ci_high": e.lower.ci_high, "lower_status": e.lower.status,
                "trials": self.trials, "members": e.members,
                "seeds_without_window": len(e.seeds_without_window), "path": self.path}

    def write_tables(self) -> None:
        """``members.parquet`` and ``estimate.json`` next to the search, and the estimate as
        the study's user attribute ``estimate``."""
        from grok_core.store import Storage

        where = Storage(self.path)
        where.write_parquet(self.members, MEMBER_TABLE)
        summary = {"settings": self.settings(), "estimate": self.estimate.to_dict()}
        where.write_json(summary, ESTIMATE_FILE)
        if self.study is not None:
            self.study.set_user_attr("estimate", json.loads(json.dumps(summary, default=str)))


def load(path: str) -> CriticalSearch:
    """The critical-ratio search at ``path`` (``<storage>/<name>``), from its Optuna study
    (or, where the study storage is gone, from its last ``members.parquet``)."""
    import io

    from grok_core.config import ConfigError
    from grok_core.store import Storage

    where = Storage(path)
    if not where.exists(SPEC_FILE):
        raise ConfigError(f"no critical-ratio search at {path!r} (no {SPEC_FILE})")
    spec = where.read_json(SPEC_FILE)
    info = where.read_json(STUDY_INFO_FILE) if where.exists(STUDY_INFO_FILE) else {}
    name = path.rstrip("/").rpartition("/")[2]
    url = info.get("study_storage") or default_study_url(path)
    study, members, trials = None, None, 0
    if info.get("study_name") and url:
        try:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.load_study(study_name=info["study_name"], storage=url)
        except Exception:  # moved or unreachable: fall back to the last tables written
            study = None
    if study is not None:
        from optuna.trial import TrialState

        members = study_members(study)
        trials = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    elif where.exists(MEMBER_TABLE):
        members = pd.read_parquet(io.BytesIO(where.read_bytes(MEMBER_TABLE)))
        trials = int(members["trial"].nunique()) if not members.empty else 0
    if members is None:
        members = pd.DataFrame(columns=MEMBER_COLUMNS)
    resolution = float(spec.get("resolution", RESOLUTION))
    estimate = estimate_edges(members, resolution, trials)
    return CriticalSearch(name, path, spec, members, estimate, info.get("study_name"),
                          url, trials, study)



def study_file_url(path: str) -> str:
    """The SQLite URL of the default study file of the search at the local ``path``."""
    return "sqlite:///" + os.path.join(os.path.abspath(path), DEFAULT_STUDY_FILE)


def default_study_url(path: str) -> Optional[str]:
    """The SQLite URL of a search's default study file if it exists (None for a URI)."""
    from grok_core.store import _is_uri

    if _is_uri(path):
        return None
    url = study_file_url(path)
    return url if os.path.exists(url.removeprefix("sqlite:///")) else None


def is_search(path: str) -> bool:
    """Whether ``path`` holds a critical-ratio search (rather than a grid sweep)."""
    from grok_core.store import Storage

    return Storage(path).exists(SPEC_FILE)


def critical_ratios(storage: str) -> pd.DataFrame:
    """One row per critical-ratio search under the storage root ``storage``: its settings as
    columns (range, seeds, step budget, every non-default setting such as the dense run's
    weight decay or the operation), both edges with their 95 % intervals, trials, members and
    seeds without a window; searches under different conditions compare in one table."""
    import pyarrow.fs as pafs

    from grok_core.store import Storage

    root = Storage(storage)
    if root.fs.get_file_info(root.root).type != pafs.FileType.Directory:
        from grok_core.config import ConfigError

        raise ConfigError(f"no storage at {storage!r}")
    rows = []
    for entry in sorted(root.fs.get_file_info(pafs.FileSelector(root.root)),
                        key=lambda e: e.base_name):
        if entry.type == pafs.FileType.Directory and root.exists(entry.base_name, SPEC_FILE):
            rows.append(load(f"{storage.rstrip('/')}/{entry.base_name}").row())
    return pd.DataFrame(rows)
