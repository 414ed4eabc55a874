"""Training one sweep trial (imported inside the trial, see ``sweeps.trainable``).

The trial runs its recipe through ``grok_core.recipes.run_recipe``, the same call as
``grok train``, with a reporter to Tune, a resume state and the dense runs' progress; a trial
of a variant group (``grok_core.trial_config``) trains its variants as one cohort through
``run_variants``, its member rows and curves labelled by ``variant``.

Every report carries a small summary and a checkpoint holding the exact training state and the
curves so far (parquet); the last report repeats every summary field and adds the final
per-member results and ``train_seconds`` (the trial's own time, without start-up imports).
A retried or restored trial resumes from its last checkpoint and ends with the same numbers as
an unbroken one.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any, Optional

import numpy as np
import pandas as pd
import ray
import torch
from ray import tune

from grok_core.config import plain_value
from grok_core.layout import BASE_MEMBERS_FILE, CURVES_FILE, MEMBERS_FILE, TRIAL_STATE_FILE
from grok_core.recipes import run_recipe, run_variants
from grok_core.store import ArtifactStore
from grok_core.trial_config import split_variant_config
from grok_core.training import CURVE_COLUMNS, Callbacks, TrainingState, curve_columns

# A report carries a checkpoint at most this often (the first and the last always do). Tune
# keeps the newest checkpoints of a trial (``num_to_keep``) and deletes older ones at once, but
# writes the experiment state that names a trial's checkpoint only every ~10 s: with
# checkpoints faster than that, a driver killed in between left a state naming a deleted
# checkpoint, and the resumed trial failed ("Could not recover from checkpoint"). Spaced
# checkpoints keep the named one alive; a killed trial loses at most this much more work.
MIN_CHECKPOINT_SECONDS = 20.0


def _summary(rows: np.ndarray, threshold: float) -> dict[str, Any]:
    """Small per-report metrics from the latest curve row of every member ([K, columns])."""
    column = {name: i for i, name in enumerate(CURVE_COLUMNS)}
    test_acc = rows[:, column["test_acc"]]
    return {"step": int(rows[:, column["step"]].max()), "members": int(len(rows)),
            "test_acc_mean": float(test_acc.mean()), "test_acc_max": float(test_acc.max()),
            "train_acc_mean": float(rows[:, column["train_acc"]].mean()),
            "generalised": int((test_acc >= threshold).sum()),
            # the metric of critical-ratio searches; final reports count t_gen instead
            "generalised_fraction": float((test_acc >= threshold).mean())}


# a member's outcome in a trial's final report; "variant" only where the trial trains a variant
# group (its rows say which variant each member is)
OUTCOME_COLUMNS = ("variant", "seed", "pruning_rate", "t_mem", "t_gen", "final_test_acc",
                   "steps_run")


def member_outcomes(rows: pd.DataFrame) -> dict[str, Any]:
    """``generalised_fraction`` (members whose test accuracy reached the threshold, i.e. that
    have a t_gen) and ``member_outcomes`` (one plain dict per member: its variant in a variant
    group's trial, seed, rate, generalised, t_mem, t_gen, final test accuracy, steps run) for
    the final report: what a critical-ratio search stores per trial."""
    outcomes = []
    columns = [c for c in OUTCOME_COLUMNS if c != "variant" or c in rows.columns]
    for row in rows.to_dict("records"):
        entry = {c: plain_value(row.get(c)) for c in columns}
        entry["generalised"] = entry["t_gen"] is not None
        outcomes.append(entry)
    fraction = sum(o["generalised"] for o in outcomes) / max(1, len(outcomes))
    return {"generalised_fraction": fraction, "member_outcomes": outcomes}



def _median(values) -> Optional[float]:
    present = [float(v) for v in values if v is not None and v == v]
    return statistics.median(present) if present else None


class _TuneReporter(Callbacks):
    """Reports to Tune with a checkpoint (training state + curves) at every state snapshot."""

    def __init__(self, threshold: float, resumed_from_step: int = 0, device: str = "cpu"
                 ) -> None:
        self.threshold = threshold
        self.last_checkpoint: Optional[float] = None  # time.monotonic() of the last one
        # who, where, on what and from which step: lets a user (and a test) see on which node
        # and device a trial ran and that a retried trial resumed mid-run
        self.identity = {"pid": os.getpid(), "node": _node_id(), "device": device,
                         "resumed_from_step": resumed_from_step}

    def on_state(self, state: TrainingState) -> None:
        rows = state.rows.cpu().numpy()
        metrics = {**_summary(_latest_rows(rows), self.threshold), **self.identity,
                   "phase": "train", "done_training": False}
        now = time.monotonic()
        if self.last_checkpoint is not None and now - self.last_checkpoint < MIN_CHECKPOINT_SECONDS:
            tune.report(metrics)
            return
        self.last_checkpoint = now
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, TRIAL_STATE_FILE), "wb") as handle:
                handle.write(state.to_bytes())
            _curve_frame(rows).to_parquet(os.path.join(directory, CURVES_FILE), index=False)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def _latest_rows(rows: np.ndarray) -> np.ndarray:
    """[K, columns]: each member's latest curve row (a member that stopped early has NaN rows
    after its last one)."""
    valid = ~np.isnan(rows[:, :, 0])  # [evals, K]
    last = valid.shape[0] - 1 - np.argmax(valid[::-1], axis=0)
    return rows[last, np.arange(rows.shape[1])]


def _dense_progress(report_every: int, threshold: float):
    """An ``on_eval`` that reports a ticket trial's own dense runs to Tune every
    ``report_every`` steps (metrics only, ``phase: dense``), so the progress table moves while
    they train; a retried trial finds finished dense runs in the store."""
    def report(step: int, rows) -> None:
        if step == 0 or step % report_every:
            return
        latest = np.stack([rows[c] for c in CURVE_COLUMNS], axis=1)
        tune.report({**_summary(latest[~np.isnan(latest[:, 0])], threshold), "phase": "dense",
                     "done_training": False})
    return report


def _curve_frame(rows: np.ndarray) -> pd.DataFrame:
    """[evals, K, columns] curve rows as a long DataFrame with a member column (the NaN rows
    after a member stopped left out)."""
    evals, k_count, _ = rows.shape
    frame = pd.DataFrame(rows.reshape(evals * k_count, -1), columns=curve_columns(rows.shape[2]))
    frame.insert(0, "member", np.tile(np.arange(k_count), evals))
    frame = frame[frame["step"].notna()]
    frame["step"] = frame["step"].astype(np.int64)
    return frame.sort_values(["member", "step"], kind="stable").reset_index(drop=True)


def trial_device() -> str:
    """'cuda' when Ray gave this trial a GPU (or a fraction of one: Ray then shows the
    trial just that device), else 'cpu'."""
    gpus = ray.get_gpu_ids() if ray.is_initialized() else []
    return "cuda" if gpus and torch.cuda.is_available() else "cpu"


def _node_id() -> str:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""


def _resume_state() -> Optional[TrainingState]:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        path = os.path.join(directory, TRIAL_STATE_FILE)
        if not os.path.exists(path):
            return None
        with open(path, "rb") as handle:
            return TrainingState.from_bytes(handle.read())


def run_trial(trial_config: dict, store_root: str, report_every: int) -> None:
    """Train the trial's cohort with reports and checkpoints to Ray Tune (module docstring);
    dense runs come from (and go to) the artifact store under ``store_root``."""
    started = time.perf_counter()
    device = trial_device()
    variants, seeds, rates = split_variant_config(trial_config)
    config = variants[0][1]  # every variant of a group shares the train section
    resume = _resume_state()
    reporter = _TuneReporter(config.train.threshold,
                             resumed_from_step=resume.step if resume else 0, device=device)
    store = ArtifactStore(store_root)
    options = dict(rates=rates, device=device, callbacks=reporter, resume=resume,
                   state_every=report_every,
                   on_dense_eval=_dense_progress(report_every, config.train.threshold))
    result = (run_recipe(config, seeds, store, **options) if len(variants) == 1
              else run_variants(variants, seeds, store, **options))
    rows = result.members
    final = {**_final_summary(rows, config.train.threshold), **reporter.identity,
             "phase": "done", "done_training": True,
             "t_mem_median": _median(rows["t_mem"]), "t_gen_median": _median(rows["t_gen"]),
             "tau_grok_median": _median(rows["tau_grok"]),
             "final_test_acc_mean": float(rows["final_test_acc"].mean()),
             **member_outcomes(rows), "train_seconds": time.perf_counter() - started}
    with tempfile.TemporaryDirectory() as directory:
        rows.to_parquet(os.path.join(directory, MEMBERS_FILE), index=False)
        result.curves.to_parquet(os.path.join(directory, CURVES_FILE), index=False)
        if result.base_members is not None:
            result.base_members.to_parquet(os.path.join(directory, BASE_MEMBERS_FILE),
                                           index=False)
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(directory))


def _final_summary(rows: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """``_summary`` of the members' last evaluations, from their final results."""
    last = np.zeros((len(rows), len(CURVE_COLUMNS)))
    column = {name: i for i, name in enumerate(CURVE_COLUMNS)}
    last[:, column["step"]] = rows["steps_run"].to_numpy(dtype=float)
    last[:, column["test_acc"]] = rows["final_test_acc"].to_numpy(dtype=float)
    last[:, column["train_acc"]] = rows["final_train_acc"].to_numpy(dtype=float)
    return _summary(last, threshold)
