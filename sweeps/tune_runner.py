"""The one Ray Tune runner behind ``grok sweep``, its dense phase and ``grok critical-ratio``.

``TuneRun`` says what to run (a trainable, its param space, where, with which resources and
searcher); ``fit`` starts it, or restores it where Tune can (an interrupted sweep resumes:
finished trials kept, unfinished ones from their last checkpoint), and ``check_finished``
turns a fit that Ctrl-C stopped into ``SweepInterrupted``. Every Tuner option the project
relies on (reused actors, retries from checkpoints, three kept checkpoints, JSON results)
is set here and nowhere else.

Ray Tune is imported inside the functions that start a run: importing it costs about a
second, and every launcher validates the user's input (and refuses bad input) before that.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import pyarrow.fs as pafs

from grok_core.errors import StorageUnavailable
from grok_core.layout import RESTARTED_INFIX
from grok_core.store import Storage, is_uri, join_location, open_location, without_query

from .ray_adapter import tune_settings
from .trainable import DEFAULT_REPORT_EVERY

log = logging.getLogger("grok.sweeps")


class SweepInterrupted(Exception):
    """The sweep stopped (Ctrl-C) with trials unfinished; rerunning the command resumes it."""


@dataclass
class TuneRun:
    """One Tune run: ``trainable(config, store, report_every)`` over ``param_space`` in the
    folder ``<storage_path>/<name>``; the artifact store under ``store`` serves its dense runs."""

    trainable: Callable[..., None]
    param_space: dict
    name: str
    storage_path: str
    store: str
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    report_every: int = DEFAULT_REPORT_EVERY
    trial_namer: Optional[Callable[[Any], str]] = None
    search_alg: Any = None
    num_samples: int = 1
    max_failures: int = 3
    tensorboard: bool = False
    restore: bool = True  # False: a new run even where Tune could restore one
    tune_config: dict = field(default_factory=dict)  # more TuneConfig options

    @property
    def path(self) -> str:
        """The run's folder (a local path or URI)."""
        return join_location(self.storage_path, self.name)


def tune_storage(location: str) -> tuple[Optional[pafs.FileSystem], str]:
    """(filesystem, path) as ``RunConfig``, ``Tuner.restore`` and ``Tuner.can_restore`` take
    them: a local folder as it is (no filesystem); a URI as its filesystem and the path in it,
    so that the URI's options (``?endpoint_override=...`` for an S3-compatible server) reach
    every node, and Tune never appends a run's name after the query."""
    return open_location(location) if is_uri(location) else (None, location)


def bound_trainable(run: TuneRun):
    """The trainable with the storage root and report cadence bound as parameters (so they
    stay out of the trials' params) and its resources per trial."""
    from ray import tune  # heavy: only when a run starts (module docstring)

    bound = tune.with_parameters(run.trainable, store=run.store, report_every=run.report_every)
    return tune.with_resources(bound, {"cpu": run.cpus_per_trial, "gpu": run.gpus_per_trial})


def _new_tuner(run: TuneRun, trainable):
    from ray import tune  # heavy: only when a run starts (module docstring)
    from ray.tune.logger import JsonLoggerCallback, TBXLoggerCallback

    callbacks = [JsonLoggerCallback()] + ([TBXLoggerCallback()] if run.tensorboard else [])
    filesystem, storage_path = tune_storage(run.storage_path)
    run_config = tune.RunConfig(
        name=run.name, storage_path=storage_path, storage_filesystem=filesystem,
        callbacks=callbacks, verbose=1,
        failure_config=tune.FailureConfig(max_failures=run.max_failures),
        # three, with checkpoints >= MIN_CHECKPOINT_SECONDS apart (sweeps.trial): the one
        # Tune's last saved experiment state names is never the one it deletes
        checkpoint_config=tune.CheckpointConfig(num_to_keep=3))
    options: dict[str, Any] = {"reuse_actors": True, "num_samples": run.num_samples,
                               **run.tune_config}
    if run.trial_namer is not None:  # the progress table and the folders name trials alike
        options.update(trial_name_creator=run.trial_namer, trial_dirname_creator=run.trial_namer)
    if run.search_alg is not None:
        options["search_alg"] = run.search_alg
    return tune.Tuner(trainable, param_space=run.param_space,
                      tune_config=tune.TuneConfig(**options), run_config=run_config)


def can_restore(path: str) -> bool:
    """Whether Tune left a run at ``path`` that it can restore."""
    from ray import tune  # heavy: only when a run starts (module docstring)

    filesystem, path = tune_storage(path)
    return tune.Tuner.can_restore(path, storage_filesystem=filesystem)


def fit(run: TuneRun):
    """Run ``run``, or restore and finish it (``run.restore`` and Tune can); returns the
    ResultGrid."""
    from ray import tune  # heavy: only when a run starts (module docstring)

    trainable = bound_trainable(run)
    with tune_settings(), storage_outages_said(run.storage_path):
        if run.restore and can_restore(run.path):
            log.info(f"resuming {without_query(run.path)}: finished trials are kept, "
                     "unfinished ones continue")
            filesystem, path = tune_storage(run.path)
            tuner = tune.Tuner.restore(path, trainable=trainable, storage_filesystem=filesystem,
                                       param_space=restore_space(run), resume_unfinished=True,
                                       resume_errored=True)
        else:
            tuner = _new_tuner(run, trainable)
        return _fit_minding_ctrl_c(tuner.fit, run.path)


# the SIGINT handler that Tune installs for a run (ray/tune/tune.py, _setup_signal_catching)
_TUNE_SIGINT_HANDLER = "signal_interrupt_tune_run"


def _fit_minding_ctrl_c(fit_tuner: Callable[[], Any], path: str):
    """``fit_tuner()`` (a Tuner's fit) without losing a Ctrl-C. Tune's SIGINT handler stops a
    run gracefully and puts back the handler it found; but a run nobody stopped leaves Tune's
    handler installed, which would swallow a later Ctrl-C (between studies, while a report is
    written), and a Ctrl-C as the last trials finish leaves no trial unfinished to show for it.
    So the handler from before the run is put back (whatever the run ends with), and a Ctrl-C
    during the run is ``SweepInterrupted`` even when every trial finished (their results are
    kept). Tune installs no handler outside the main thread, or with
    TUNE_DISABLE_SIGINT_HANDLER=1."""
    if threading.current_thread() is not threading.main_thread():
        return fit_tuner()
    before = signal.getsignal(signal.SIGINT)
    try:
        grid = fit_tuner()
    finally:
        after = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, before)
    tune_handled = not int(os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0"))
    stopped = tune_handled and getattr(after, "__name__", None) != _TUNE_SIGINT_HANDLER
    if stopped and not unfinished_trials(grid):
        raise SweepInterrupted(f"interrupted (Ctrl-C) as the trials of {without_query(path)} "
                               "finished; their results are kept")
    return grid


def restore_space(run: TuneRun) -> Optional[dict]:
    """The param space to give ``Tuner.restore``: None for a grid (its trials, configs
    included, are in Tune's saved state, and Tune refuses a space whose keys differ from the
    first one's: a sweep started before variants shared trials, or on another number of
    slots, is split otherwise today); a searcher's own space otherwise."""
    return None if run.search_alg is None else run.param_space


@contextlib.contextmanager
def storage_outages_said(location: str) -> Iterator[None]:
    """A remote storage that stops answering during a run (pyarrow's OSError, from Tune or a
    trial) as ``StorageUnavailable``: one line, and how to go on. Local folders' errors are
    left as they are."""
    try:
        yield
    except OSError as exc:
        if not is_uri(location):
            raise
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageUnavailable(
            f"storage {without_query(location)} stopped answering ({why[:200]}); what it "
            "holds is kept: rerun the same command once it is back, and the run resumes"
        ) from None


def unfinished_trials(grid) -> list:
    """Results of the trials neither finished nor failed (Tune stops that way on Ctrl-C)."""
    return [r for r in grid if r.error is None and not (r.metrics or {}).get("done_training")]


def check_finished(grid, path: str) -> None:
    """SweepInterrupted if Tune returned with trials unfinished."""
    unfinished = unfinished_trials(grid)
    if unfinished:
        raise SweepInterrupted(f"interrupted: {len(unfinished)} of {len(grid)} trial(s) of {path} "
                               "unfinished; rerun the same command to resume them")


def move_aside(storage: str, name: str) -> Optional[str]:
    """Rename an existing folder NAME to NAME.restarted-K (results are never deleted); returns
    where it went, or None if there was none."""
    where = Storage(storage)
    if not where.is_dir(name):
        return None
    k = 1
    while where.fs.get_file_info(where.path(f"{name}{RESTARTED_INFIX}{k}")).type \
            != pafs.FileType.NotFound:
        k += 1
    where.move_folder(name, f"{name}{RESTARTED_INFIX}{k}")
    return where.display(f"{name}{RESTARTED_INFIX}{k}")
