"""Every Ray Tune and Optuna detail we use beyond their public API, in one place.

Each entry says which private attribute or undocumented knob it needs and why;
``tests/test_ray_adapter.py`` fails when a new Ray or Optuna release removes one, so an upgrade
shows at once what to revisit (pyproject pins both to the majors we test).

- Tune reads two settings only from environment variables, with no API: the interval at which
  it saves the experiment state (``TUNE_GLOBAL_CHECKPOINT_S``) and whether it adds its default
  CSV / TensorBoard loggers (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``). ``tune_settings`` sets
  them for one ``Tuner.fit`` and restores the caller's environment afterwards.
- Tune gives every trial actor ``PL_DISABLE_FORK`` (for PyTorch Lightning) through the private
  ``ray.tune.execution.class_cache.DEFAULT_ENV_VARS``; an actor with environment variables of its
  own never gets one of the worker processes Ray prestarts (1-1.5 s more per trial actor).
  ``prestarted_workers`` drops that one variable for one fit and puts it back afterwards.
- ``OptunaSearch`` keeps its Optuna trials in ``_ot_trials`` (Tune trial id -> Optuna trial),
  the ones it told in ``_completed_trials`` and its storage in ``_storage``; an Optuna trial's
  storage id is ``_trial_id``, and a study's storage ``_storage``. The critical-ratio search needs
  them to beat heartbeats for the trials Tune runs and to fail the ones it never told.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

# what a sweep wants of Tune's environment-only settings (see the module docstring)
TUNE_ENVIRONMENT = {
    # Tune saves the experiment state (trial params, results, which checkpoint to resume from)
    # every >= 10 s by default: a driver killed sooner left trials without params on storage.
    # Every 2 s keeps what a killed sweep leaves readable and resumable (checkpoints are >= 20 s
    # apart, sweeps.trial.MIN_CHECKPOINT_SECONDS). A value the user set is kept.
    "TUNE_GLOBAL_CHECKPOINT_S": "2",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # JSON only, unless --tensorboard
}
LIGHTNING_ENV_VAR = "PL_DISABLE_FORK"


@contextlib.contextmanager
def tune_settings() -> Iterator[None]:
    """``TUNE_ENVIRONMENT`` for the duration of one fit (a variable the user set wins); the
    process environment is as before afterwards."""
    added = {k: v for k, v in TUNE_ENVIRONMENT.items() if k not in os.environ}
    os.environ.update(added)
    try:
        with prestarted_workers():
            yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _default_env_vars() -> dict | None:
    try:
        from ray.tune.execution import class_cache  # private: see the module docstring
    except ImportError:
        return None
    env = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    return env if isinstance(env, dict) else None


@contextlib.contextmanager
def prestarted_workers() -> Iterator[None]:
    """Trial actors without ``PL_DISABLE_FORK`` for one fit, so Ray may hand them prestarted
    workers; Tune's table is restored afterwards. Does nothing if Ray renamed things."""
    env = _default_env_vars()
    if env is None or LIGHTNING_ENV_VAR not in env:
        yield
        return
    value = env.pop(LIGHTNING_ENV_VAR)
    try:
        yield
    finally:
        env[LIGHTNING_ENV_VAR] = value


def searcher_trials(searcher: Any) -> dict[str, Any]:
    """Tune trial id -> Optuna trial of an ``OptunaSearch`` (its private ``_ot_trials``)."""
    return searcher._ot_trials


def searcher_told(searcher: Any) -> set:
    """Tune trial ids an ``OptunaSearch`` has told the study (its private ``_completed_trials``)."""
    return searcher._completed_trials


def searcher_storage(searcher: Any) -> Any:
    """The Optuna storage an ``OptunaSearch`` was given (its private ``_storage``)."""
    return searcher._storage


def storage_trial_id(trial: Any) -> int:
    """An Optuna trial's id in its storage (``Trial._trial_id``, needed for heartbeats)."""
    return trial._trial_id


def study_storage(study: Any) -> Any:
    """An Optuna study's storage (``Study._storage``, needed for heartbeats)."""
    return study._storage
