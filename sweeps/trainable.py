"""The Ray Tune trainables: one trial trains one cohort (seeds x pruning rates) of one recipe,
or of a group of variants that share it.

A trial's config is an ``ExperimentConfig`` in nested form plus ``seeds`` and ``rates`` (and a
variant or a variant group; see ``grok_core.trial_config``); the sweep binds the storage root (which holds the shared artifact
store) and the report cadence with ``tune.with_parameters``, so they never show among a trial's
params. What a trial does, its reports and checkpoints, is in ``sweeps.trial``.

This module stays free of torch on purpose: the sweep driver imports it to hand the trainables
to Tune, and loading torch there would cost every ``grok sweep`` (and every rejected command) a
couple of seconds. The engine is imported inside the trial, where it runs.
"""
from __future__ import annotations

DEFAULT_REPORT_EVERY = 500
RATE_PARAM = "pruning_rate"  # what a critical-ratio search suggests per trial
DENSE_RUN_PARAM = "dense_run"  # a dense-phase trial's one param: the dense trial config


def grok_trainable(trial_config: dict, store: str, report_every: int = DEFAULT_REPORT_EVERY
                   ) -> None:
    """Ray Tune function trainable: train the cohort of ``trial_config`` with the dense runs
    of the artifact store under ``store``, reporting every ``report_every`` steps."""
    from .trial import run_trial  # torch: only inside the trial (module docstring)

    run_trial(trial_config, store, report_every)


def dense_phase_trainable(trial_config: dict, store: str,
                          report_every: int = DEFAULT_REPORT_EVERY) -> None:
    """A dense-phase trial: the dense runs several tickets share, trained once beforehand."""
    grok_trainable(trial_config[DENSE_RUN_PARAM], store, report_every)


def critical_ratio_trainable(trial_config: dict, store: str,
                             report_every: int = DEFAULT_REPORT_EVERY) -> None:
    """Ray Tune function trainable of a critical-ratio search: the ticket cohort of
    ``trial_config`` (every seed) at the one rate the search suggested (``pruning_rate``)."""
    config = {k: v for k, v in trial_config.items() if k != RATE_PARAM}
    config["rates"] = [float(trial_config[RATE_PARAM])]
    grok_trainable(config, store, report_every)
