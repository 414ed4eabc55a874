"""A sweep trial's config: an ``ExperimentConfig`` in nested form plus the cohort it trains.

Torch-free, so the sweep driver validates trial configs without loading the engine; the
trainable (``grok_core.trainable``) and the trial body (``grok_core.trial_run``) both take the
parser from here.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from .config import MASK_RECIPES, ExperimentConfig

COHORT_KEYS = ("seeds", "rates")
# Written by sweeps before the storage root and report cadence were passed to the trainable as
# parameters; still ignored so that such sweeps load and resume.
LEGACY_PRIVATE_KEYS = ("_store", "_report_every")


def split_trial_config(trial_config: Mapping[str, Any]
                       ) -> tuple[ExperimentConfig, list[int], Optional[list[float]]]:
    """(validated config, seeds, rates) of a trial config; rates only for tickets."""
    settings = {k: v for k, v in trial_config.items()
                if k not in (*COHORT_KEYS, *LEGACY_PRIVATE_KEYS)}
    config = ExperimentConfig.from_dict(settings)
    rates = trial_config.get("rates")
    return config, [int(s) for s in trial_config["seeds"]], (
        [float(r) for r in rates] if rates is not None and config.recipe in MASK_RECIPES else None)
