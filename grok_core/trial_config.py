"""A sweep trial's config: an ``ExperimentConfig`` in nested form plus the cohort it trains.

Torch-free, so the sweep driver validates trial configs without loading the engine; the
trainable (``sweeps.trainable``) and the trial body (``sweeps.trial``) both take the
parser from here.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from .config import MASK_RECIPES, ConfigError, ExperimentConfig

COHORT_KEYS = ("seeds", "rates")
# A study whose cells are not a product of grid axes (a grokking ticket against norm-matched
# controls, or against pruning-at-init methods) puts a grid over "variant": each value is a
# dict of settings with a "label", merged over the trial's other settings.
VARIANT_KEY = "variant"
# Written by sweeps before the storage root and report cadence were passed to the trainable as
# parameters; still ignored so that such sweeps load and resume.
LEGACY_PRIVATE_KEYS = ("_store", "_report_every")


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def variant_label(trial_config: Mapping[str, Any]) -> Optional[str]:
    """The label of the trial's variant (None: the trial has none)."""
    variant = trial_config.get(VARIANT_KEY)
    return None if variant is None else str(variant.get("label"))


def trial_settings(trial_config: Mapping[str, Any]) -> dict:
    """The trial's ``ExperimentConfig`` settings in nested form: its settings with its
    variant's merged over them; cohort keys left out."""
    settings = {k: v for k, v in trial_config.items()
                if k not in (*COHORT_KEYS, *LEGACY_PRIVATE_KEYS, VARIANT_KEY)}
    variant = trial_config.get(VARIANT_KEY)
    if variant is not None:
        if not isinstance(variant, Mapping) or "label" not in variant:
            raise ConfigError(f"variant: expected a dict of settings with a 'label', got "
                              f"{variant!r}")
        settings = _merge(settings, {k: v for k, v in variant.items() if k != "label"})
    return settings


def split_trial_config(trial_config: Mapping[str, Any]
                       ) -> tuple[ExperimentConfig, list[int], Optional[list[float]]]:
    """(validated config, seeds, rates) of a trial config; rates only for tickets."""
    config = ExperimentConfig.from_dict(trial_settings(trial_config))
    rates = trial_config.get("rates")
    return config, [int(s) for s in trial_config["seeds"]], (
        [float(r) for r in rates] if rates is not None and config.recipe in MASK_RECIPES else None)
