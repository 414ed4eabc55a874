"""The Optuna study behind a critical-ratio search: opening its storage, heartbeats, stale
trials, and the ``OptunaSearch`` that records each trial's member outcomes on it.

The study (in an RDB storage: a SQLite file by default, any SQLAlchemy URL) is the search's
state. The driver keeps an Optuna heartbeat for each trial it runs; a driver killed mid-search
leaves RUNNING trials whose heartbeats stop, and the next run marks them FAIL
(``fail_stale_trials``) before it asks for new ones. Optuna's private attributes this needs are
reached through ``sweeps.ray_adapter``.
"""
from __future__ import annotations

import contextlib
import threading
import time
import warnings
from typing import Any, Callable, Iterator, Optional

import optuna
from optuna.storages import fail_stale_trials as optuna_fail_stale
from optuna.trial import TrialState

from grok_core.config import ConfigError

from .ray_adapter import (searcher_storage, searcher_told, searcher_trials, storage_trial_id,
                          study_storage)

Log = Callable[[str], None]
HEARTBEAT_SECONDS = 2   # the driver's heartbeat for each running trial
GRACE_SECONDS = 8       # a RUNNING trial without a heartbeat for this long is stale
STORAGE_ATTEMPTS = 5
# What SQLAlchemy says when another process (a second driver on a shared study, a reader)
# creates the same fresh storage's tables at the same moment: measured 3 failures in 10 when
# two processes opened one new SQLite file together. Opening again then finds the tables.
_SCHEMA_RACE = ("already exists", "unique constraint failed", "duplicate key",
                "database is locked")
# Optuna flags heartbeats as experimental and expects them with Study.optimize; here the driver
# beats for the trials Ray Tune runs (ask/tell). Neither warning is news to a user.
_EXPERIMENTAL_WARNINGS = (".*fail_stale_trials is experimental.*",
                          "Heartbeat of storage is supposed to be used.*",
                          ".*heartbeat_interval.*experimental.*", ".*grace_period.*experimental.*")


@contextlib.contextmanager
def quiet_heartbeat_warnings() -> Iterator[None]:
    """A ``with`` block without Optuna's warnings that heartbeats are experimental and meant
    for Study.optimize (the process's warning filters are as before afterwards)."""
    with warnings.catch_warnings():
        for message in _EXPERIMENTAL_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


def _lost_schema_race(message: str) -> bool:
    """Whether opening a storage failed only because another process created it meanwhile."""
    return any(marker in message.lower() for marker in _SCHEMA_RACE)


def open_study_storage(url: str, heartbeat: bool = True):
    """An Optuna RDB storage at ``url`` with heartbeats; ConfigError (one line) if it cannot
    be opened. A lost table-creation race (another process created the tables meanwhile) is
    retried."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs: dict[str, Any] = {}
    if heartbeat:
        kwargs = {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS}
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with quiet_heartbeat_warnings():
                return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as exc:  # sqlalchemy raises many kinds; the user needs one line
            text = str(exc).strip().splitlines()
            if attempt + 1 < STORAGE_ATTEMPTS and _lost_schema_race(str(exc)):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise ConfigError(f"--study-storage {url}: cannot open the study storage "
                              f"({text[0] if text else type(exc).__name__})") from None


def finished_trials(study_url: str, name: str) -> int:
    """COMPLETE trials of the study NAME at ``study_url`` (0 if it does not exist yet)."""
    rdb = open_study_storage(study_url, heartbeat=False)
    try:
        study = optuna.load_study(study_name=name, storage=rdb)
    except KeyError:
        return 0
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def fail_stale_trials(study, log: Log, wait: float = GRACE_SECONDS + 2 * HEARTBEAT_SECONDS
                      ) -> int:
    """Mark FAIL the RUNNING trials of a driver that stopped (no heartbeat for the grace
    period), waiting up to ``wait`` seconds for fresh ones to go stale; ConfigError if some
    still beat then (another driver runs this study). Returns how many were failed."""
    def running() -> list:
        return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))

    left_running = running()
    before = len(left_running)
    if before:
        log(f"{before} trial(s) left RUNNING by a driver that stopped: waiting for their "
            f"heartbeats to go stale (up to {wait:.0f} s), then they are marked FAIL")
    # Optuna never calls a trial without any heartbeat stale, and a driver killed between
    # ``ask`` and its first beat leaves one: beat each once here, so that every RUNNING trial
    # goes stale after the grace period unless a live driver keeps beating it.
    for trial in left_running:
        study_storage(study).record_heartbeat(storage_trial_id(trial))
    deadline = time.monotonic() + wait
    while True:
        with quiet_heartbeat_warnings():
            optuna_fail_stale(study)
        left = running()
        if not left:
            return before
        if time.monotonic() > deadline:
            numbers = ", ".join(str(t.number) for t in left)
            raise ConfigError(f"study {study.study_name}: trial(s) {numbers} are RUNNING with "
                              "fresh heartbeats; another grok critical-ratio runs this search "
                              "(stop it first, or use --name NEW)")
        time.sleep(0.5)


class Heartbeat(threading.Thread):
    """Records an Optuna heartbeat every HEARTBEAT_SECONDS for each trial the driver runs."""

    def __init__(self, storage, running: Callable[[], list[int]]) -> None:
        super().__init__(daemon=True, name="optuna-heartbeat")
        self.storage, self.running = storage, running
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            for trial_id in self.running():
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a finished trial, a busy database: try again next beat
                    pass


def study_search_class():
    """``OptunaSearch`` that stores each trial's member outcomes on the study and reports
    progress (built on call: importing Ray Tune costs about a second)."""
    from ray.tune.search.optuna import OptunaSearch  # heavy: only once a search runs

    class StudySearch(OptunaSearch):
        """Tells the study the fraction of a trial's members that generalised, with the members
        (seed, rate, generalised, t_gen ...) as user attributes; no intermediate values (the
        engine's early stop ends runs, not Optuna pruners)."""

        def __init__(self, *args, on_told: Optional[Callable[[], None]] = None, **kwargs):
            super().__init__(*args, **kwargs)
            self._on_told = on_told

        def suggest(self, trial_id: str):
            config = super().suggest(trial_id)
            ot_trial = searcher_trials(self).get(trial_id)
            if ot_trial is not None:  # at once: a trial never sits RUNNING without a beat
                searcher_storage(self).record_heartbeat(storage_trial_id(ot_trial))
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            return None

        def on_trial_complete(self, trial_id: str, result: Optional[dict] = None,
                              error: bool = False) -> None:
            ot_trial = searcher_trials(self).get(trial_id)
            members = (result or {}).get("member_outcomes")
            if ot_trial is not None and members and not error:
                ot_trial.set_user_attr("n_members", len(members))
                generalised = sum(bool(member.get("generalised")) for member in members)
                ot_trial.set_user_attr("generalised", f"{generalised}/{len(members)}")
                ot_trial.set_user_attr("members", members)
                ot_trial.set_user_attr("tune_trial_id", trial_id)
            elif result is not None and not error:
                result = None  # stopped before its final report: not an outcome
            super().on_trial_complete(trial_id, result, error or members is None)
            if self._on_told is not None:
                self._on_told()

        def untold_trials(self) -> list:
            """Optuna trials this driver asked for and has not told yet."""
            told = searcher_told(self)
            return [t for tid, t in list(searcher_trials(self).items()) if tid not in told]

        def running_trial_ids(self) -> list[int]:
            """Storage ids of the Optuna trials of this driver not yet told."""
            return [storage_trial_id(t) for t in self.untold_trials()]

        def save(self, checkpoint_path: str) -> None:
            """Nothing: the study in its RDB storage is the search's state, and a search
            resumes by a new Tune run on it, never by restoring Tune's searcher."""

        def restore(self, checkpoint_path: str) -> None:
            """Nothing (see ``save``)."""

    return StudySearch


def fail_untold(study, searcher) -> None:
    """Trials this driver asked for but never told (stopped by Ctrl-C): FAIL, so they are
    neither results nor RUNNING forever."""
    for ot_trial in searcher.untold_trials():
        try:
            study.tell(ot_trial, state=TrialState.FAIL)
        except Exception:  # already finished
            pass
