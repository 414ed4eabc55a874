"""A sweep trial's config: an ``ExperimentConfig`` in nested form plus the cohort it trains.

Torch-free, so the sweep driver validates trial configs without loading the engine; the
trainable (``sweeps.trainable``) and the trial body (``sweeps.trial``) both take the
parser from here.

A trial's ``variant`` is one dict of settings with a ``label`` (merged over the trial's other
settings), or a list of such dicts: a *variant group*, whose members train as one cohort
(``grok_core.recipes.run_variants``). Which variants may share a cohort is decided here, and
only here: ``cohort_signature``.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Optional, Sequence

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
    """The label of the trial's variant (None: the trial has none, or trains a group)."""
    variant = trial_config.get(VARIANT_KEY)
    return str(variant.get("label")) if isinstance(variant, Mapping) else None


def variant_group(trial_config: Mapping[str, Any]) -> list[Optional[Mapping[str, Any]]]:
    """The variants a trial trains, in cohort order: ``[None]`` without variants, one dict (a
    trial of one variant, as every sweep before variant groups wrote), or each of a group."""
    variant = trial_config.get(VARIANT_KEY)
    group = variant if isinstance(variant, list) else [variant]
    for value in group:
        if value is not None and (not isinstance(value, Mapping) or "label" not in value):
            raise ConfigError(f"variant: expected a dict of settings with a 'label' (or a list "
                              f"of them), got {value!r}")
    if not group:
        raise ConfigError("variant: an empty list of variants")
    return group


def _with_variant(trial_config: Mapping[str, Any], variant: Optional[Mapping[str, Any]]) -> dict:
    """The trial's settings with ``variant``'s merged over them; cohort keys left out."""
    settings = {k: v for k, v in trial_config.items()
                if k not in (*COHORT_KEYS, *LEGACY_PRIVATE_KEYS, VARIANT_KEY)}
    if variant is None:
        return settings
    return _merge(settings, {k: v for k, v in variant.items() if k != "label"})


def variant_settings(trial_config: Mapping[str, Any]) -> list[tuple[Optional[str], dict]]:
    """(label, nested ``ExperimentConfig`` settings) of each variant the trial trains (label
    None: the trial has no variant)."""
    return [(None if v is None else str(v["label"]), _with_variant(trial_config, v))
            for v in variant_group(trial_config)]


def trial_settings(trial_config: Mapping[str, Any]) -> dict:
    """The ``ExperimentConfig`` settings (nested) of a trial of one variant (or none): its
    settings with its variant's merged over them; cohort keys left out. ConfigError for a
    variant group (``variant_settings`` gives each of its variants')."""
    (only, *others) = variant_settings(trial_config)
    if others:
        raise ConfigError("variant: this trial trains a group of variants (variant_settings)")
    return only[1]


def _cohort(trial_config: Mapping[str, Any], recipe: str
            ) -> tuple[list[int], Optional[list[float]]]:
    rates = trial_config.get("rates")
    return [int(s) for s in trial_config["seeds"]], (
        [float(r) for r in rates] if rates is not None and recipe in MASK_RECIPES else None)


def split_trial_config(trial_config: Mapping[str, Any]
                       ) -> tuple[ExperimentConfig, list[int], Optional[list[float]]]:
    """(validated config, seeds, rates) of a trial of one variant (or none); rates only for
    tickets."""
    config = ExperimentConfig.from_dict(trial_settings(trial_config))
    return (config, *_cohort(trial_config, config.recipe))


def split_variant_config(trial_config: Mapping[str, Any]
                         ) -> tuple[list[tuple[Optional[str], ExperimentConfig]], list[int],
                                    Optional[list[float]]]:
    """([(label, validated config) per variant], seeds, rates) of any trial config; several
    variants only where they can share a cohort (``cohort_signature``), else ConfigError."""
    variants = [(label, ExperimentConfig.from_dict(settings))
                for label, settings in variant_settings(trial_config)]
    check_one_cohort(variants)
    return (variants, *_cohort(trial_config, variants[0][1].recipe))


# What one ``train_cohort`` call shares among its members (``grok_core.training``): the data,
# the model and its loss, the optimiser but its per-member lr and weight decay, the whole
# ``train`` section (steps, evaluation, threshold, early stop, batches, checkpoints), and the
# forward kind (fixed masks, or edge-popup's learned ones with or without training the
# weights). Everything else (recipe, masks, initial weights, pruning, dense base) is per member.
PER_MEMBER_OPTIM = ("lr", "weight_decay")


def cohort_signature(config: ExperimentConfig) -> Optional[str]:
    """What variants must agree on to train as one cohort (one ``train_cohort`` call), as a
    string; None for a dense run, which trains into the artifact store on a path of its own
    and never shares a cohort with another variant. Variants whose signatures are equal give
    each member the same numbers as its solo run."""
    if not config.traits.from_dense:
        return None
    optim = {k: v for k, v in dataclasses.asdict(config.optim).items()
             if k not in PER_MEMBER_OPTIM}
    forward = (["learned masks", config.edge_popup.trains_weights] if config.learns_masks
               else ["fixed masks"])
    shared = {"task": dataclasses.asdict(config.task), "model": dataclasses.asdict(config.model),
              "loss": config.loss, "optim": optim, "train": dataclasses.asdict(config.train),
              "forward": forward}
    return json.dumps(shared, sort_keys=True, default=str)


def check_one_cohort(variants: Sequence[tuple[Optional[str], ExperimentConfig]]) -> None:
    """ConfigError unless the (label, config) ``variants`` can train as one cohort: one
    variant, or several with one ``cohort_signature`` (not None)."""
    if len(variants) < 2:
        return
    signatures = {cohort_signature(config) for _, config in variants}
    if None in signatures or len(signatures) > 1:
        raise ConfigError(f"variant: {', '.join(str(label) for label, _ in variants)} cannot "
                          "train as one cohort (they differ in what the training loop shares)")


def compatible_groups(signatures: Sequence[Optional[Any]]) -> list[list[int]]:
    """Indices grouped by equal signature (None: alone), in order of first appearance: the
    variants (given by their ``cohort_signature``, or a tuple of them over several cells)
    that may train as one cohort."""
    groups: dict[Any, list[int]] = {}
    for index, signature in enumerate(signatures):
        key = ("alone", index) if signature is None or (
            isinstance(signature, tuple) and None in signature) else signature
        groups.setdefault(key, []).append(index)
    return list(groups.values())
