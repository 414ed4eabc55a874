"""``grok critical-ratio``: the critical-ratio search as a Ray Tune run driven by Optuna.

A search is a folder ``<storage>/<name>/`` holding ``critical.json`` (what it searches: the
ticket settings, seeds, range, resolution; fixed for its life), the Optuna study (a SQLite
file ``study.db`` there by default, any SQLAlchemy URL by ``--study-storage``), the dense phase
(``dense/``, only if the artifact store lacked a seed's dense run), one Tune run per invocation
(``run-1/``, ``run-2/`` ...: trial folders with curves), and the outputs ``members.parquet``
(one row per member outcome), ``estimate.json`` and ``summary.png``.

The study is the search's state. Tune's searcher is ``OptunaSearch`` on that study, behind a
``ConcurrencyLimiter`` (one trial per free slot), with the sampler asked for; a trial trains
every seed's ticket at the suggested ``pruning_rate`` as one cohort (``critical_trainable``) and
its members' outcomes go to the study as user attributes. A rerun continues the study up to
``--trials`` finished trials. The driver keeps an Optuna heartbeat for each trial it runs; a
driver killed mid-search leaves RUNNING trials whose heartbeats stop, and the next run marks
them FAIL (``fail_stale_trials``) before it asks for new ones.
"""
from __future__ import annotations

import json
import os
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from analysis.critical import SPEC_FILE, STUDY_INFO_FILE, study_file_url
from grok_core.config import ConfigError
from grok_core.store import ArtifactStore, Storage, _is_uri
from grok_core.trainable import DEFAULT_REPORT_EVERY, RATE_PARAM

from .cluster import check_reachable, check_resources, connect_ray, trial_slots
from .launch import (SweepInterrupted, _bound, _check_finished, _dense_trainable, _fit,
                     _move_aside, resolve_storage)
from .space import requested_space, validate_cell

Log = Callable[[str], None]
# Optuna flags its heartbeats as experimental and expects them with Study.optimize; here the
# driver beats for the trials Ray Tune runs (ask/tell). Neither warning is news to a user.
warnings.filterwarnings("ignore", message=".*fail_stale_trials is experimental.*")
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used.*")
STUDY = "critical_ratio"  # the search_spaces module whose settings a search takes
METRIC = "generalised_fraction"
HEARTBEAT_SECONDS = 2   # the driver's heartbeat for each running trial
GRACE_SECONDS = 8       # a RUNNING trial without a heartbeat for this long is stale
PRINT_EVERY = 3         # finished trials between progress lines of the estimate


@dataclass
class CriticalRequest:
    """What a user asked for; see ``grok critical-ratio --help``."""

    overrides: Sequence[str] = ()
    seeds: Optional[Sequence[int]] = None
    low: Optional[float] = None
    high: Optional[float] = None
    trials: Optional[int] = None
    sampler: str = "threshold"
    seed: int = 0
    resolution: float = 0.01
    name: Optional[str] = None
    storage: str = "grok_sweeps"
    study_storage: Optional[str] = None
    address: Optional[str] = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    restart: bool = False
    quick: bool = False
    report_every: int = DEFAULT_REPORT_EVERY
    tensorboard: bool = False  # read by the shared Tune helpers

    @property
    def search_name(self) -> str:
        """``--name``, else critical-ratio (``-quick`` for the quick version)."""
        return self.name or "critical-ratio" + ("-quick" if self.quick else "")

    def defaults(self) -> dict:
        """The study's default seeds, range and trials (quick or full)."""
        from search_spaces import get_space

        module = get_space(STUDY)
        return dict(module.QUICK_SEARCH if self.quick else module.SEARCH)

    def resolved(self) -> "CriticalRequest":
        """A copy with the study's defaults filled in where the user gave nothing."""
        import dataclasses

        defaults = self.defaults()
        return dataclasses.replace(
            self, seeds=list(self.seeds) if self.seeds is not None else defaults["seeds"],
            low=self.low if self.low is not None else defaults["low"],
            high=self.high if self.high is not None else defaults["high"],
            trials=self.trials if self.trials is not None else defaults["trials"])

    def template(self) -> dict:
        """A trial's config without its rate: the study's ticket settings with ``--set`` and
        the seeds (every trial trains all of them)."""
        space = requested_space(STUDY, self.quick, self.overrides, self.seeds)
        space.pop("rates", None)
        return space

    def spec(self) -> dict:
        """What fixes a search's outcomes (its identity): settings, seeds, range, resolution."""
        return {"study": STUDY, "template": self.template(), "low": self.low, "high": self.high,
                "resolution": self.resolution}


def search_folder(storage: str, name: str) -> str:
    """Where the search NAME lives under the resolved ``storage``."""
    return f"{storage.rstrip('/')}/{name}"


def default_study_storage(storage: str, name: str) -> str:
    """The SQLite URL of the study next to the search's files (local storage only)."""
    if _is_uri(storage):
        raise ConfigError("--study-storage: give an SQLAlchemy URL (e.g. sqlite:///study.db or "
                          "postgresql://...) when --storage is a URI; the default SQLite file "
                          "needs a local folder")
    return study_file_url(search_folder(storage, name))


def open_study_storage(url: str, heartbeat: bool = True):
    """An Optuna RDB storage at ``url`` with heartbeats; ConfigError (one line) if it cannot
    be opened."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs: dict[str, Any] = {}
    if heartbeat:
        kwargs = {"heartbeat_interval": HEARTBEAT_SECONDS, "grace_period": GRACE_SECONDS}
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "heartbeat_interval is experimental"
                return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as exc:  # sqlalchemy raises many kinds; the user needs one line
            text = str(exc).strip().splitlines()
            if attempt + 1 < STORAGE_ATTEMPTS and _lost_schema_race(str(exc)):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise ConfigError(f"--study-storage {url}: cannot open the study storage "
                              f"({text[0] if text else type(exc).__name__})") from None


STORAGE_ATTEMPTS = 5
# What SQLAlchemy says when another process (a second driver on a shared study, a reader)
# creates the same fresh storage's tables at the same moment: measured 3 failures in 10 when
# two processes opened one new SQLite file together. Opening again then finds the tables.
_SCHEMA_RACE = ("already exists", "unique constraint failed", "duplicate key",
                "database is locked")


def _lost_schema_race(message: str) -> bool:
    """Whether opening a storage failed only because another process created it meanwhile."""
    return any(marker in message.lower() for marker in _SCHEMA_RACE)


def validate(request: CriticalRequest) -> CriticalRequest:
    """Every check of the user's input, before any work: range, trials, sampler, resources,
    settings (a trial's config at both ends of the range)."""
    from grok_core.config import check_pruning_rate, choice

    from .critical import SAMPLERS, check_range

    request = request.resolved()
    check_range(request.low, request.high)
    if request.trials < 1:
        raise ConfigError(f"--trials: must be at least 1, got {request.trials}")
    choice("--sampler", request.sampler, SAMPLERS)
    if not 0 < request.resolution < 1:
        raise ConfigError(f"--resolution: must be in (0, 1), got {request.resolution}")
    if request.cpus_per_trial <= 0 or request.gpus_per_trial < 0:
        raise ConfigError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    address = request.address or os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address)
    template = request.template()
    for rate in (request.low, request.high):
        check_pruning_rate(rate)
        config = validate_cell({**template, "rates": [rate]})
        if config.recipe != "ticket":
            raise ConfigError("recipe: a critical-ratio search trains tickets; drop recipe=")
    return request


def check_same_search(folder: Storage, spec: dict) -> None:
    """ConfigError if the search exists with another spec (a study's outcomes are only
    comparable under one set of settings, seeds, range and step budget)."""
    from grok_core.config import changed_settings

    if not folder.exists(SPEC_FILE):
        return
    try:
        stored = folder.read_json(SPEC_FILE)
    except ValueError:
        return
    wanted = json.loads(json.dumps(spec))
    if stored == wanted:
        return
    changed = [k.removeprefix("template.") for k in changed_settings(stored, wanted)]
    raise ConfigError(f"search {folder.display()} was started with other settings (differs in "
                      f"{', '.join(changed)}): rerun it as it was to continue it, or use --name "
                      "NEW for a new search, or --restart to start it over")


def restart_search(storage: str, name: str, study_url: str, default_url: bool, log: Log) -> None:
    """Keep the old search as NAME.restarted-K: its folder (which holds the default SQLite
    study, found there again by ``analysis.critical.load``) and, in a user-given study
    storage, its study copied to the name NAME.restarted-K (then deleted under NAME)."""
    import optuna

    kept = _move_aside(storage, name)
    if kept:
        log(f"starting {name} over (--restart); the old search is now {kept}")
    if default_url:
        return
    rdb = open_study_storage(study_url, heartbeat=False)
    names = {s.study_name for s in optuna.get_all_studies(storage=rdb)}
    if name not in names:
        return
    old = kept.rstrip("/").rpartition("/")[2] if kept else f"{name}.restarted-1"
    while old in names:
        old += "-1"
    optuna.copy_study(from_study_name=name, from_storage=rdb, to_storage=rdb,
                      to_study_name=old)
    optuna.delete_study(study_name=name, storage=rdb)
    if kept:
        where = Storage(search_folder(storage, kept.rstrip("/").rpartition("/")[2]))
        if where.exists(STUDY_INFO_FILE):
            where.write_json({**where.read_json(STUDY_INFO_FILE), "study_name": old},
                             STUDY_INFO_FILE)
    log(f"the old study is now {old} in {study_url}")


def fail_stale_trials(study, log: Log, wait: float = GRACE_SECONDS + 2 * HEARTBEAT_SECONDS
                      ) -> int:
    """Mark FAIL the RUNNING trials of a driver that stopped (no heartbeat for the grace
    period), waiting up to ``wait`` seconds for fresh ones to go stale; ConfigError if some
    still beat then (another driver runs this study). Returns how many were failed."""
    from optuna.storages import fail_stale_trials as optuna_fail_stale
    from optuna.trial import TrialState

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
        study._storage.record_heartbeat(trial._trial_id)
    deadline = time.monotonic() + wait
    while True:
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


class _Heartbeat(threading.Thread):
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


def _study_search_class():
    """``OptunaSearch`` that stores each trial's member outcomes on the study and reports
    progress (built on call: importing Ray Tune costs seconds)."""
    from ray.tune.search.optuna import OptunaSearch

    class StudySearch(OptunaSearch):
        """Tells the study the fraction of a trial's members that generalised, with the members
        (seed, rate, generalised, t_gen ...) as user attributes; no intermediate values (the
        engine's early stop ends runs, not Optuna pruners)."""

        def __init__(self, *args, on_told: Optional[Callable[[], None]] = None, **kwargs):
            super().__init__(*args, **kwargs)
            self._on_told = on_told

        def suggest(self, trial_id: str):
            config = super().suggest(trial_id)
            ot_trial = self._ot_trials.get(trial_id)
            if ot_trial is not None:  # at once: a trial never sits RUNNING without a beat
                self._storage.record_heartbeat(ot_trial._trial_id)
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            return None

        def on_trial_complete(self, trial_id: str, result: Optional[dict] = None,
                              error: bool = False) -> None:
            ot_trial = self._ot_trials.get(trial_id)
            members = (result or {}).get("member_outcomes")
            if ot_trial is not None and members and not error:
                ot_trial.set_user_attr("n_members", len(members))
                ot_trial.set_user_attr("members", members)
                ot_trial.set_user_attr("tune_trial_id", trial_id)
            elif result is not None and not error:
                result = None  # stopped before its final report: not an outcome
            super().on_trial_complete(trial_id, result, error or members is None)
            if self._on_told is not None:
                self._on_told()

        def running_trial_ids(self) -> list[int]:
            """Storage ids of the Optuna trials of this driver not yet told."""
            return [t._trial_id for tid, t in list(self._ot_trials.items())
                    if tid not in self._completed_trials]

        def save(self, checkpoint_path: str) -> None:
            """Nothing: the study in its RDB storage is the search's state, and a search
            resumes by a new Tune run on it, never by restoring Tune's searcher."""

        def restore(self, checkpoint_path: str) -> None:
            """Nothing (see ``save``)."""

    return StudySearch


def _next_run_name(folder: Storage) -> str:
    k = 1
    while folder.exists(f"run-{k}"):
        k += 1
    return f"run-{k}"


def train_dense_phase(request: CriticalRequest, storage: str, folder: str, slots: int,
                      log: Log) -> None:
    """Train, as a Tuner of their own, the dense runs the store lacks (one per seed, shared by
    every trial of the search and by any sweep under the same storage)."""
    from grok_core.trial_config import split_trial_config

    config, seeds, _ = split_trial_config({**request.template(), "rates": [request.low]})
    base = config.dense_base()
    store = ArtifactStore(storage)
    missing = [s for s in seeds if not store.has_dense(base.dense_key(), s)]
    if not missing:
        log(f"dense runs {base.dense_key()} of seeds {','.join(map(str, seeds))}: in the store")
        return
    per_trial = max(1, -(-len(missing) // slots))
    runs = [{**{k: v for k, v in base.to_dict().items() if k != "base"},
             "seeds": missing[i:i + per_trial]} for i in range(0, len(missing), per_trial)]
    log(f"dense phase: seeds {','.join(map(str, missing))} ({base.train.steps} steps, "
        f"{len(runs)} trial(s)), shared by every trial of the search")
    grid = _fit(_bound(_dense_trainable, request, storage), {"dense_run": {"grid_search": runs}},
                "dense", folder, request, [], log)
    _check_finished(grid, f"{folder}/dense")


def run_critical(request: CriticalRequest, log: Log = print):
    """Validate, open (or continue) the study, train the missing dense runs, run the search on
    Ray Tune until the study holds ``--trials`` finished trials, then write and return the
    estimate (``analysis.critical.CriticalSearch``). Nothing is written before every input
    check (settings, storage, study storage, cluster, resources) has passed."""
    request = validate(request)
    storage = resolve_storage(request.storage)
    name = request.search_name
    Storage(storage).check_writable()
    default_url = request.study_storage is None
    study_url = request.study_storage or default_study_storage(storage, name)
    spec = request.spec()
    folder = Storage(search_folder(storage, name))
    if not request.restart:
        check_same_search(folder, spec)
    finished = 0 if request.restart else _finished_trials(study_url, name, default_url)
    remaining = request.trials - finished
    if remaining > 0:
        connect_ray(request.address)
        check_resources(request.cpus_per_trial, request.gpus_per_trial)
    if request.restart:
        restart_search(storage, name, study_url, default_url, log)
    folder.write_json(spec, SPEC_FILE)
    # the default SQLite file is found next to the search's files (it moves with them on
    # --restart), so only a user-given URL is written down
    folder.write_json({"study_name": name,
                       "study_storage": None if default_url else study_url,
                       "sampler": request.sampler, "seed": request.seed}, STUDY_INFO_FILE)
    import optuna

    rdb = open_study_storage(study_url)
    study = optuna.create_study(study_name=name, storage=rdb, direction="maximize",
                                load_if_exists=True)
    study.set_user_attr("grok_spec", json.loads(json.dumps(spec)))
    failed = fail_stale_trials(study, log)
    if failed:
        log(f"marked {failed} stale trial(s) FAIL: they are not counted as results")
    log(f"search {name}: study {name} in {study_url}; {finished} finished trial(s), "
        f"{max(0, remaining)} to go (--trials {request.trials})")
    if remaining > 0:
        _search(request, storage, folder, study, rdb, finished, remaining, log)
    return write_outputs(folder.root, log)


def _finished_trials(study_url: str, name: str, default_url: bool) -> int:
    """COMPLETE trials of the study NAME (0 if it does not exist yet); opening the storage
    checks a user-given URL before anything is written."""
    import optuna
    from optuna.trial import TrialState

    if default_url and not os.path.exists(study_url.removeprefix("sqlite:///")):
        return 0
    rdb = open_study_storage(study_url, heartbeat=False)
    try:
        study = optuna.load_study(study_name=name, storage=rdb)
    except KeyError:
        return 0
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _search(request: CriticalRequest, storage: str, folder: Storage, study, rdb,
            finished: int, remaining: int, log: Log) -> None:
    """The Tune run: OptunaSearch on the study behind a ConcurrencyLimiter, heartbeats, dense
    phase first; a progress line of the estimate every few finished trials."""
    import optuna
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback
    from ray.tune.search import ConcurrencyLimiter

    from grok_core.trainable import critical_trainable

    from .critical import make_sampler

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    slots = trial_slots(request.cpus_per_trial, request.gpus_per_trial)
    train_dense_phase(request, storage, folder.root, slots, log)
    sampler = make_sampler(request.sampler, request.low, request.high, request.seed,
                           request.resolution, finished)
    told = {"count": 0}

    def on_told() -> None:
        told["count"] += 1
        if told["count"] % PRINT_EVERY == 0:
            progress_line(folder.root, log)

    searcher = _study_search_class()(
        space={RATE_PARAM: optuna.distributions.FloatDistribution(request.low, request.high)},
        metric=METRIC, mode="max", sampler=sampler, study_name=study.study_name, storage=rdb,
        on_told=on_told)
    heartbeat = _Heartbeat(rdb, searcher.running_trial_ids)
    heartbeat.start()
    run_name = _next_run_name(folder)
    log(f"{run_name}: {remaining} trial(s), {slots} at a time, sampler {request.sampler}; "
        f"each trains seeds {','.join(map(str, request.seeds))} at one rate")
    namer = lambda trial: f"{trial.trial_id}_rate={trial.config.get(RATE_PARAM, 0):.4f}"  # noqa: E731
    tuner = tune.Tuner(
        _bound(critical_trainable, request, storage),
        param_space=request.template(),
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=slots),
            num_samples=remaining, reuse_actors=True, trial_name_creator=namer,
            trial_dirname_creator=namer),
        run_config=tune.RunConfig(
            name=run_name, storage_path=folder.root, callbacks=[JsonLoggerCallback()], verbose=1,
            failure_config=tune.FailureConfig(max_failures=1),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=3)))
    try:
        grid = tuner.fit()
    finally:
        heartbeat.stopped.set()
        _fail_untold(study, searcher)
    unfinished = [r for r in grid if r.error is None and not (r.metrics or {}).get("done_training")]
    if unfinished:
        raise SweepInterrupted(f"interrupted: {len(unfinished)} trial(s) unfinished (marked "
                               "FAIL in the study); rerun the same command to continue")


def _fail_untold(study, searcher) -> None:
    """Trials this driver asked for but never told (stopped by Ctrl-C): FAIL, so they are
    neither results nor RUNNING forever."""
    from optuna.trial import TrialState

    for trial_id, ot_trial in list(searcher._ot_trials.items()):
        if trial_id in searcher._completed_trials:
            continue
        try:
            study.tell(ot_trial, state=TrialState.FAIL)
        except Exception:  # already finished
            pass


def progress_line(path: str, log: Log) -> None:
    """Log the current estimate of the search at ``path`` and write its tables."""
    from analysis.critical import load

    try:
        search = load(path)
    except ConfigError:
        return
    if search.members.empty:
        return
    estimate = search.estimate
    log(f"[{estimate.trials} trials, {estimate.members} members] upper edge "
        f"{estimate.upper.describe()}, lower edge {estimate.lower.describe()}, seeds without a "
        f"window {len(estimate.seeds_without_window)}/{len(estimate.per_seed)}")
    search.write_tables()


def write_outputs(path: str, log: Log):
    """members.parquet, estimate.json, the study's user attributes and summary.png of the
    search at ``path``; returns its ``CriticalSearch``."""
    from analysis.critical import load

    search = load(path)
    search.write_tables()
    if not search.members.empty:
        from analysis.figures import critical_summary_png

        Storage(path).write_bytes(critical_summary_png(search), "summary.png")
    return search
