"""A critical-ratio search as it lies on storage: its spec, its Optuna study (or the last
member table written), and the estimate; ``critical_ratios`` compares every search under a
storage root in one DataFrame. File names are ``grok_core.layout``'s.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import pandas as pd
import pyarrow.fs as pafs

from grok_core.config import ConfigError, ExperimentConfig, flatten_settings
from grok_core.layout import (ESTIMATE_FILE, MEMBERS_FILE, SEARCH_SPEC_FILE,
                              SEARCH_STUDY_FILE, SEARCH_STUDY_INFO_FILE)
from grok_core.store import Storage, is_uri, location_name

from .edges import CriticalEstimate, estimate_edges
from .fit import RESOLUTION

# the member table of a search (members.parquet): one row per member outcome
SEARCH_MEMBER_COLUMNS = ["trial", "seed", "pruning_rate", "generalised", "t_gen", "t_mem",
                         "final_test_acc", "steps_run"]


def search_model(spec: dict) -> str:
    """The architecture a search's spec (``critical.json``) trains: ``model.name`` of its
    tickets, the MLP by default."""
    return (spec.get("template", {}).get("model", {}) or {}).get("name", "mlp")


def study_members(study) -> pd.DataFrame:
    """One row per member outcome of the study's finished trials (``trial_members``)."""
    return trial_members(study.get_trials(deepcopy=False))


def trial_members(trials) -> pd.DataFrame:
    """One row per member outcome of the finished ones among Optuna ``trials``
    (``SEARCH_MEMBER_COLUMNS``): from a trial's ``members`` user attribute where it has one, else
    ``n_members`` outcomes at its rate from its value, of the seed its user attribute or
    parameter ``seed`` names if any (the objective contract of
    ``sweeps.critical_ratio_sampler``)."""
    from optuna.trial import TrialState  # heavy: only when a study is read

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
    for column in SEARCH_MEMBER_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=float)
    others = [c for c in frame.columns if c not in SEARCH_MEMBER_COLUMNS]
    frame = frame[SEARCH_MEMBER_COLUMNS + others]
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
    def model(self) -> str:
        """The architecture searched (``search_model``)."""
        return search_model(self.spec)

    @property
    def steps(self) -> Optional[int]:
        """The tickets' step budget (part of what the estimate means)."""
        return (self.spec.get("template", {}).get("train", {}) or {}).get("steps")

    def settings(self) -> dict[str, Any]:
        """The search's settings as flat columns: range, resolution, seeds, the step budget and
        every ticket / dense-run setting that differs from the defaults."""
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
        return {"name": self.name, "model": self.model, **self.settings(),
                "critical_ratio": e.upper.estimate, "ci_low": e.upper.ci_low,
                "ci_high": e.upper.ci_high, "upper_status": e.upper.status,
                "lower_edge": e.lower.estimate, "lower_ci_low": e.lower.ci_low,
                "lower_ci_high": e.lower.ci_high, "lower_status": e.lower.status,
                "trials": self.trials, "members": e.members,
                "seeds_without_window": len(e.seeds_without_window), "path": self.path}

    def write_tables(self) -> None:
        """``members.parquet`` and ``estimate.json`` next to the search, and the estimate as
        the study's user attributes ``estimate`` (all of it), ``critical_ratio`` and
        ``lower_edge`` (a line each)."""
        where = Storage(self.path)
        where.write_parquet(self.members, MEMBERS_FILE)
        summary = {"settings": self.settings(), "estimate": self.estimate.to_dict()}
        where.write_json(summary, ESTIMATE_FILE)
        if self.study is not None:
            self.study.set_user_attr("estimate", json.loads(json.dumps(summary, default=str)))
            # one short line per edge: optuna-dashboard shows a study's attributes as text and
            # cuts long ones (the estimate above) short
            self.study.set_user_attr("critical_ratio", self.estimate.upper.describe())
            self.study.set_user_attr("lower_edge", self.estimate.lower.describe())


class CriticalSearches(dict):
    """Critical-ratio searches of one storage by architecture ({model name: CriticalSearch},
    the MLP first): App. E's claim compares their edges, and the report draws them together."""

    @property
    def members(self) -> pd.DataFrame:
        """Every search's member outcomes, with the architecture as column ``model``."""
        frames = [search.members.assign(model=model) for model, search in self.items()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=[*SEARCH_MEMBER_COLUMNS, "model"])

    def summary_lines(self) -> list[str]:
        """Each search's header and estimate, one after the other."""
        return [line for search in self.values() for line in search.summary_lines()]


def load(path: str) -> CriticalSearch:
    """The critical-ratio search at ``path`` (``<storage>/<name>``), from its Optuna study
    (or, where the study storage is gone, from its last ``members.parquet``)."""
    where = Storage(path)
    if not where.exists(SEARCH_SPEC_FILE):
        raise ConfigError(f"no critical-ratio search at {path!r} (no {SEARCH_SPEC_FILE})")
    spec = where.read_json(SEARCH_SPEC_FILE)
    info = where.read_json(SEARCH_STUDY_INFO_FILE) if where.exists(SEARCH_STUDY_INFO_FILE) else {}
    name = location_name(path)
    url = info.get("study_storage") or default_study_url(path)
    study, members, trials = None, None, 0
    if info.get("study_name") and url:
        try:
            import optuna  # heavy: only when a study is read

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.load_study(study_name=info["study_name"], storage=url)
        except Exception:  # moved or unreachable: fall back to the last tables written
            study = None
    if study is not None:
        from optuna.trial import TrialState  # loaded with the study already

        members = study_members(study)
        trials = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    elif where.exists(MEMBERS_FILE):
        members = pd.read_parquet(io.BytesIO(where.read_bytes(MEMBERS_FILE)))
        trials = int(members["trial"].nunique()) if not members.empty else 0
    if members is None:
        members = pd.DataFrame(columns=SEARCH_MEMBER_COLUMNS)
    resolution = float(spec.get("resolution", RESOLUTION))
    estimate = estimate_edges(members, resolution, trials)
    return CriticalSearch(name, path, spec, members, estimate, info.get("study_name"),
                          url, trials, study)


def study_file_url(path: str) -> str:
    """The SQLite URL of the default study file of the search at the local ``path``."""
    return "sqlite:///" + os.path.join(os.path.abspath(path), SEARCH_STUDY_FILE)


def default_study_url(path: str) -> Optional[str]:
    """The SQLite URL of a search's default study file if it exists (None for a URI)."""
    if is_uri(path):
        return None
    url = study_file_url(path)
    return url if os.path.exists(url.removeprefix("sqlite:///")) else None


def is_search(path: str) -> bool:
    """Whether ``path`` holds a critical-ratio search (rather than a grid sweep)."""
    return Storage(path).exists(SEARCH_SPEC_FILE)


def critical_ratios(storage: str) -> pd.DataFrame:
    """One row per critical-ratio search under the storage root ``storage``: its settings as
    columns (range, seeds, step budget, every non-default setting such as the dense run's
    weight decay or the operation), both edges with their 95 % intervals, trials, members and
    seeds without a window; searches under different conditions compare in one table."""
    root = Storage(storage)
    if root.fs.get_file_info(root.root).type != pafs.FileType.Directory:
        raise ConfigError(f"no storage at {storage!r}")
    rows = []
    for entry in sorted(root.fs.get_file_info(pafs.FileSelector(root.root)),
                        key=lambda e: e.base_name):
        if entry.type == pafs.FileType.Directory and root.exists(entry.base_name, SEARCH_SPEC_FILE):
            rows.append(load(root.child(entry.base_name)).row())
    return pd.DataFrame(rows)
