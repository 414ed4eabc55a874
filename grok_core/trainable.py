"""The Ray Tune trainable: one trial trains one cohort (seeds x pruning rates) of one recipe.

A trial's config is an ``ExperimentConfig`` in nested form plus ``seeds``, ``rates`` and two
private keys the sweep adds: ``_store`` (the storage root that holds the shared artifact store)
and ``_report_every`` (steps between reports). What a trial does, its reports and checkpoints,
is in ``grok_core.trial_run``.

This module stays free of torch on purpose: the sweep driver imports it to validate trial
configs and to hand ``grok_trainable`` to Tune, and loading torch there would cost every
``grok sweep`` (and every rejected command) a couple of seconds. The engine is imported inside
the trial, where it runs.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from .config import ExperimentConfig

PRIVATE_KEYS = ("_store", "_report_every")


def split_trial_config(trial_config: Mapping[str, Any]
                       ) -> tuple[ExperimentConfig, list[int], Optional[list[float]]]:
    """(validated config, seeds, rates) of a trial config (private keys ignored)."""
    settings = {k: v for k, v in trial_config.items()
                if k not in ("seeds", "rates", *PRIVATE_KEYS)}
    config = ExperimentConfig.from_dict(settings)
    rates = trial_config.get("rates")
    return config, [int(s) for s in trial_config["seeds"]], (
        [float(r) for r in rates] if rates is not None and config.recipe == "ticket" else None)


def grok_trainable(trial_config: dict) -> None:
    """Ray Tune function trainable: train the cohort of ``trial_config`` (module docstring)."""
    from .trial_run import run_trial

    run_trial(trial_config)
