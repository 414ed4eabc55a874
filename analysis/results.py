"""Sweep results as pandas tables, read straight from Tune's files (no Ray needed).

``load(PATH)`` reads a finished or partial sweep, from a directory or a URI: every trial folder
(one with ``params.json``) and its newest checkpoint. Finished trials give member rows; every trial
gives curves (partial ones up to its last checkpoint).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from grok_core.config import MASK_RECIPES, ConfigError, ExperimentConfig, flatten_settings
from grok_core.errors import CorruptArtifact
from grok_core.layout import BASE_MEMBERS_FILE, CURVES_FILE, MEMBERS_FILE, SWEEP_SPEC_FILE
from grok_core.store import ArtifactStore, Storage, frame_from, location_name, location_parent
from grok_core.trial_config import variant_settings

log = logging.getLogger("grok.analysis")

CHECKPOINT = re.compile(r"checkpoint_(\d+)$")
HIDDEN_CONFIG_KEYS = ("seeds", "rates", "_store", "_report_every")
METRICS = ("tau_grok", "t_mem", "t_gen", "final_test_acc")
NEVER = math.inf  # the t_gen of a run that never generalised: later than any step


@dataclass
class SweepResults:
    """``members``: one row per member of a finished trial (flattened config columns, seed,
    pruning_rate, t_mem, t_gen, tau_grok, final metrics); ``curves``: one row per member per
    evaluated step; ``trials``: one row per trial, where a Tune trial that trained a variant
    group counts as one trial per variant (``TRIAL:LABEL``; ``tune_trial`` names the Tune
    trial, ``tune_trials()`` counts them); ``base``: the dense runs behind tickets;
    ``base_curves``: their curves (with dense_key and seed), where the artifact store next to
    the sweep still holds them."""

    members: pd.DataFrame
    curves: pd.DataFrame
    trials: pd.DataFrame
    base: pd.DataFrame
    base_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = ""
    study: Optional[str] = None
    path: str = ""

    def title(self) -> str:
        """What a figure of this sweep is about: its name, its study and the settings every
        trial shares (those the study or ``--set`` changed from the defaults)."""
        head = self.name + (f" (study {self.study})" if self.study and self.study != self.name
                            else "")
        shared = shared_settings(self.trials)
        return head + (f": {shared}" if shared else "")

    def tune_trials(self) -> tuple[int, int]:
        """(finished, all) of the sweep's Tune trials (a variant group is one)."""
        if self.trials.empty:
            return 0, 0
        finished = self.trials.groupby("tune_trial", sort=False)["finished"].all()
        return int(finished.sum()), len(finished)

    def non_grokking(self) -> pd.DataFrame:
        """Ticket members whose mask came from a dense run that had not yet generalised at the
        mask step (``base_generalised`` False): non-grokking tickets."""
        return self._flagged("base_generalised")

    def non_memorising_starts(self) -> pd.DataFrame:
        """Edge-popup members whose theta_mem is no memorising start (``start_memorising``
        False: it had generalised, or not fitted its training split, at the start step)."""
        return self._flagged("start_memorising")

    def _flagged(self, column: str) -> pd.DataFrame:
        """Members whose ``column`` is False (none if the sweep lacks the column)."""
        if column not in self.members.columns:
            return self.members.iloc[0:0]
        return self.members[self.members[column] == False]  # noqa: E712


def _member_labels(config: dict) -> list[dict[str, Any]]:
    """Seed and pruning rate (and, in a variant group, the variant) of each cohort member, in
    the order the trainable stacks them: variant after variant, each seeds x rates."""
    seeds = config.get("seeds", [])
    variants = variant_settings(config)
    labels = []
    for label, settings in variants:
        own = {"variant": label} if len(variants) > 1 else {}
        if settings.get("recipe", "dense") in MASK_RECIPES:
            rates = config.get("rates") or [settings.get("prune", {}).get("rate", 0.6)]
            labels += [{**own, "seed": s, "pruning_rate": float(r)} for s in seeds for r in rates]
        else:
            labels += [{**own, "seed": s, "pruning_rate": 0.0} for s in seeds]
    return labels


@dataclass
class _Part:
    """One variant of a trial as the tables show it: a trial of its own (``trial``), with its
    settings as columns. A trial of one variant is one part named as the trial; a variant
    group is one part per variant, named ``TRIAL:LABEL``, so that every table has one trial
    per variant, as when each variant was a trial of its own."""

    label: Optional[str]
    trial: str
    columns: dict[str, Any]
    needs_dense: bool  # whether its members start from dense runs (the base rows' owner)

    def own(self, frame: pd.DataFrame) -> pd.DataFrame:
        """This variant's rows of a trial's frame (a group's rows carry a ``variant``)."""
        if "variant" not in frame.columns or self.label is None:
            return frame
        return frame[frame["variant"] == self.label].drop(columns="variant")


def _in_variant_order(grouped: bool, trials: list, *others: list) -> list[list]:
    """The items of lists of (variant label, item), ``trials`` first; in a sweep with variant
    groups, variant after variant (labels in the order the trials list them first, each
    variant's in trial order): the order of a sweep that trained a trial per variant."""
    lists = [trials, *others]
    if grouped:
        rank = {label: i for i, label in enumerate(dict.fromkeys(lab for lab, _ in trials))}
        lists = [sorted(entries, key=lambda entry: rank[entry[0]]) for entries in lists]
    return [[item for _, item in entries] for entries in lists]


def _parts(trial: str, config: dict) -> list[_Part]:
    """The variants of the trial ``trial`` with config ``config`` (``_Part``)."""
    try:
        variants = variant_settings(config)
    except ConfigError:
        return [_Part(None, trial, _config_columns(config), True)]
    if len(variants) == 1:
        (label, settings), = variants
        return [_Part(label, trial, _config_columns(config, settings, label), True)]
    return [_Part(label, f"{trial}:{label}", _config_columns(config, settings, label),
                  _needs_dense(settings)) for label, settings in variants]


def _needs_dense(settings: dict) -> bool:
    """Whether a variant's members start from dense runs (unreadable settings: assume so)."""
    try:
        return ExperimentConfig.from_dict(settings).needs_dense_base
    except ConfigError:
        return True


def _read_parquet(storage: Storage, *parts: str) -> Optional[pd.DataFrame]:
    if not storage.exists(*parts):
        return None
    return frame_from(storage.read_bytes(*parts))


def _newest_readable(storage: Storage, trial: str, checkpoints: list[tuple[int, str]]
                     ) -> tuple[Optional[str], Optional[pd.DataFrame], Optional[pd.DataFrame]]:
    """(checkpoint, curves, member rows or None) of the newest checkpoint that reads whole.
    A sweep killed while Tune copied a checkpoint can leave its files cut short; the one
    before it is then the trial's latest state."""
    for _, name in reversed(checkpoints):
        try:
            curve = _read_parquet(storage, trial, name, CURVES_FILE)
            rows = _read_parquet(storage, trial, name, MEMBERS_FILE)
        except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
            continue
        if curve is not None or rows is not None:
            return name, curve, rows
    return None, None, None


def load(path: str) -> SweepResults:
    """Tables of the sweep at ``path`` (``<storage>/<name>``), finished or not."""
    storage = Storage(path)
    info = storage.fs.get_file_info(storage.root)
    if info.type != pafs.FileType.Directory:
        raise ConfigError(f"no sweep at {path!r}")
    # (variant label, row or frame): a sweep with variant groups is put in variant order
    members, curves, trials, base, grouped = [], [], [], [], False
    selector = pafs.FileSelector(storage.root, recursive=False)
    for entry in sorted(storage.fs.get_file_info(selector), key=lambda e: e.base_name):
        if entry.type != pafs.FileType.Directory or not storage.exists(entry.base_name, "params.json"):
            continue
        trial = entry.base_name
        try:
            config = storage.read_json(trial, "params.json")
        except ValueError:  # cut short by a kill as Tune wrote it: a trial that never ran
            config = {}
        parts = _parts(trial, config)
        checkpoints = sorted(
            (int(m.group(1)), e.base_name) for e in storage.fs.get_file_info(
                pafs.FileSelector(entry.path, recursive=False))
            if (m := CHECKPOINT.match(e.base_name)))
        latest, curve, rows = _newest_readable(storage, trial, checkpoints)
        finished = rows is not None
        grouped = grouped or len(parts) > 1
        trials += [(part.label, {"trial": part.trial, "tune_trial": trial,
                                 "finished": finished, **part.columns}) for part in parts]
        if finished:
            for part in parts:
                own = part.own(rows)
                members.append((part.label, own.assign(trial=part.trial, **{
                    k: v for k, v in part.columns.items() if k not in own.columns})))
            dense = _read_parquet(storage, trial, latest, BASE_MEMBERS_FILE)
            if dense is not None:  # the first trial a dense run served (a sweep may share it)
                owner = next((part for part in parts if part.needs_dense), parts[0])
                base.append((owner.label, dense.assign(trial=owner.trial)))
        elif curve is not None:  # partial: label members from the trial config
            labels = pd.DataFrame(_member_labels(config)).rename_axis("member").reset_index()
            curve = curve.merge(labels, on="member").drop(columns="member")
        if curve is not None:
            curves += [(part.label, part.own(curve).assign(trial=part.trial))
                       for part in parts]
    trials, members, curves, base = _in_variant_order(grouped, trials, members, curves, base)
    concat = lambda frames: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()  # noqa: E731
    base_frame = concat(base)
    if not base_frame.empty:
        base_frame = base_frame.drop_duplicates(subset=["dense_key", "seed"], ignore_index=True)
    study = None
    if storage.exists(SWEEP_SPEC_FILE):
        try:
            study = storage.read_json(SWEEP_SPEC_FILE).get("study")
        except ValueError:
            study = None
    return SweepResults(concat(members), concat(curves), pd.DataFrame(trials), base_frame,
                        _dense_curves(path, base_frame), name=location_name(path),
                        study=study, path=path)


def _config_columns(config: dict, settings: Optional[dict] = None,
                    label: Optional[str] = None) -> dict[str, Any]:
    """A variant's settings (default: the whole trial config's) as flat columns, and its
    label as ``variant``; cohort keys left out."""
    columns = {k: v for k, v in flatten_settings(config if settings is None else settings).items()
               if k.split(".")[0] not in HIDDEN_CONFIG_KEYS and k not in HIDDEN_CONFIG_KEYS}
    if label is not None:
        columns["variant"] = label
    return columns


def shared_settings(trials: pd.DataFrame, limit: int = 6) -> str:
    """'key=value, ...' of the config columns every trial has alike (at most ``limit``)."""
    if trials.empty:
        return ""
    columns = [c for c in trials.columns if "." in c or c == "recipe"]
    alike = [c for c in columns if trials[c].astype(str).nunique(dropna=False) == 1]
    shown = [f"{c.split('.', 1)[-1] if c.startswith('task.') else c}={trials[c].iloc[0]}"
             for c in alike]
    return ", ".join(shown[:limit]) + (", ..." if len(shown) > limit else "")


def sweep_store(path: str):
    """The artifact store of the sweep at ``path``: its storage root (the parent folder)."""
    return ArtifactStore(location_parent(path))


def _dense_curves(path: str, base: pd.DataFrame) -> pd.DataFrame:
    """Curves of the dense runs in ``base`` from the artifact store of the sweep's storage
    root (the parent of ``path``); runs no longer there are left out."""
    if base.empty or "dense_key" not in base.columns:
        return pd.DataFrame()
    store = sweep_store(path)
    frames = []
    for key, seed in zip(base["dense_key"], base["seed"]):
        if not store.has_dense(key, int(seed)):
            continue
        try:
            frames.append(store.dense_curves(key, int(seed)).assign(dense_key=key, seed=int(seed)))
        except CorruptArtifact as bad:  # the sweep's own tables still load; the next trial
            # that needs the run trains it again (grok_core.recipes.repairing)
            log.warning(f"{bad}: its curves are left out")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def varying_columns(members: pd.DataFrame) -> list[str]:
    """Config columns whose value differs between trials (the cell axes). With variants, the
    ``variant`` label first, then only the columns that vary within a variant (the settings a
    variant sets are told by its label)."""
    config_columns = [c for c in members.columns if "." in c]
    varying = [c for c in config_columns if members[c].astype(str).nunique(dropna=False) > 1]
    if "variant" not in members.columns:
        return varying
    by_variant = members.astype({c: str for c in varying}).groupby("variant")
    return ["variant", *[c for c in varying if (by_variant[c].nunique(dropna=False) > 1).any()]]


def aggregate(members: pd.DataFrame) -> pd.DataFrame:
    """mean / std / n of tau_grok, t_mem, t_gen, final test accuracy over seeds, per cell and
    pruning rate (and recipe). A run that never generalises has no t_gen / tau_grok: n counts
    the runs that have one, ``runs`` all of them; for tickets, ``non_grokking`` counts members
    whose mask came from a dense run that had not generalised by the mask step."""
    if members.empty:
        return pd.DataFrame()
    keys = [c for c in ["recipe", *varying_columns(members), "pruning_rate"] if c in members]
    grouped = members.groupby(keys, dropna=False, sort=True)
    table = grouped.size().rename("runs").to_frame()
    for metric in METRICS:
        values = grouped[metric]
        table[f"{metric}_mean"] = values.mean()
        table[f"{metric}_std"] = values.std()
        table[f"{metric}_n"] = values.count()
    if "base_generalised" in members.columns:  # tickets: masks from dense runs not yet grokked
        table["non_grokking"] = grouped["base_generalised"].agg(
            lambda flags: int((flags == False).sum()))  # noqa: E712
    return table.reset_index()


def members_wide(curves: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` as one column per member (told apart by trial, seed and pruning rate) and one
    row per step, a member that stopped early holding its last value (it stopped because it had
    held test accuracy >= the threshold for the stop margin)."""
    member = [c for c in ("trial", "seed", "pruning_rate") if c in curves.columns]
    return curves.pivot_table(index="step", columns=member, values=column,
                              aggfunc="first").sort_index().ffill()


def curves_with_cells(curves: pd.DataFrame, trials: pd.DataFrame
                      ) -> tuple[pd.DataFrame, list[str]]:
    """Curves with their trials' varying settings (the variant first) as columns."""
    cells = [c for c in varying_columns(trials) if c in trials.columns] if not trials.empty else []
    frame = curves.merge(trials[["trial", *cells]], on="trial") if cells else curves
    return frame, cells


def accuracy_at_steps(curves: pd.DataFrame, trials: pd.DataFrame, steps,
                      column: str = "test_acc") -> pd.DataFrame:
    """Mean, std and count over members of ``column`` at each of ``steps``, per cell (variant)
    and pruning rate: one row per (cell, rate, step) the members reached (Table 1's layout
    with ``pivot``). A member that stopped early holds its last value; a step no member of the
    sweep reached is left out."""
    if curves.empty:
        return pd.DataFrame()
    frame, cells = curves_with_cells(curves, trials)
    keys = [*cells, "pruning_rate"] if "pruning_rate" in frame.columns else cells
    rows, reached = [], frame["step"].max()
    for key, part in (frame.groupby(keys, dropna=False, sort=False) if keys else [((), frame)]):
        key = key if isinstance(key, tuple) else (key,)
        wide = members_wide(part, column)
        for step in steps:
            if step > reached:
                continue
            values = wide.loc[:step].iloc[-1]  # at the step, or the evaluation before it
            rows.append({**dict(zip(keys, key)), "step": int(step), f"{column}_mean":
                         float(values.mean()), f"{column}_std": float(values.std()),
                         "n": int(values.count())})
    return pd.DataFrame(rows)


def median_t_gen(members: pd.DataFrame) -> float:
    """Median step of generalisation over members, a member that never generalised counting as
    later than any step (so the median is inf when half of them never did)."""
    if members.empty:
        return math.nan
    return float(np.median(members["t_gen"].astype(float).fillna(NEVER)))
