"""``grok critical-ratio``: the critical-ratio search as a Ray Tune run driven by Optuna.

A search is a folder ``<storage>/<name>/`` (``grok_core.layout``) holding ``critical.json``
(what it searches: the ticket settings, seeds, range, resolution; fixed for its life), the
Optuna study (a SQLite file ``study.db`` there by default, any SQLAlchemy URL by
``--study-storage``; ``sweeps.optuna_study``), the dense phase (``dense/``, only if the artifact
store lacked a seed's dense run), one Tune run per invocation (``run-1/``, ``run-2/`` ...: trial
folders with curves), and the outputs ``members.parquet`` (one row per member outcome),
``estimate.json`` and ``summary.png``.

Tune's searcher is ``OptunaSearch`` on the study, behind a ``ConcurrencyLimiter`` (one trial per
free slot), with the sampler asked for (``sweeps.critical_ratio_sampler``); a trial trains
every seed's ticket at the suggested ``pruning_rate`` as one cohort
(``sweeps.trainable.critical_ratio_trainable``) and its members' outcomes go to the study as
user attributes. A rerun continues the study up to ``--trials`` finished trials.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from typing import Optional, Sequence

from analysis.critical_ratio import load as load_search
from analysis.critical_ratio import study_file_url
from analysis.figures import critical_summary_png
from grok_core.config import ConfigError, check_pruning_rate, choice, typed_override
from grok_core.layout import (DEFAULT_STORAGE, SEARCH_SPEC_FILE, SEARCH_STUDY_INFO_FILE,
                              SUMMARY_FIGURE_FILE, critical_search_name)
from grok_core.store import ArtifactStore, Storage, is_uri, location_name
from grok_core.trial_config import split_trial_config
from search_spaces import get_study

from .cluster import check_reachable, check_resources, connect_ray, trial_slots
from .critical_ratio_sampler import SAMPLERS, check_range, make_sampler
from .dense_phase import dense_phase_space, run_dense_phase
from .grid_sweep import resolve_storage, sweep_path
from .optuna_study import (Heartbeat, fail_stale_trials, fail_untold, finished_trials,
                           open_study_storage, quiet_heartbeat_warnings, study_search_class)
from .space import requested_space, validate_cell
from .stored_spec import check_same_spec
from .trainable import DEFAULT_REPORT_EVERY, RATE_PARAM, critical_ratio_trainable
from .tune_runner import SweepInterrupted, TuneRun, fit, move_aside, unfinished_trials

log = logging.getLogger("grok.sweeps")
STUDY = "critical_ratio"  # the study (search_spaces module) whose settings a search takes
METRIC = "generalised_fraction"
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
    storage: str = DEFAULT_STORAGE
    study_storage: Optional[str] = None
    address: Optional[str] = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    restart: bool = False
    quick: bool = False
    report_every: int = DEFAULT_REPORT_EVERY

    @property
    def model(self) -> str:
        """The architecture searched: the last ``--set model.name=`` (default the MLP)."""
        names = [value for key, value in map(typed_override, self.overrides)
                 if key == "model.name"]
        return names[-1] if names else "mlp"

    @property
    def search_name(self) -> str:
        """``--name``, else the default name of the architecture's search
        (``grok_core.layout.critical_search_name``)."""
        return self.name or critical_search_name(self.model, self.quick)

    def defaults(self) -> dict:
        """The study's default seeds, range and trials for the architecture (quick or full)."""
        return get_study(STUDY).search_defaults(self.model, self.quick)

    def resolved(self) -> "CriticalRequest":
        """A copy with the study's defaults filled in where the user gave nothing."""
        defaults = self.defaults()
        return dataclasses.replace(
            self, seeds=list(self.seeds) if self.seeds is not None else defaults["seeds"],
            low=self.low if self.low is not None else defaults["low"],
            high=self.high if self.high is not None else defaults["high"],
            trials=self.trials if self.trials is not None else defaults["trials"])

    def template(self) -> dict:
        """A trial's config without its rate: the study's ticket settings with ``--set`` and
        the seeds (every trial trains all of them)."""
        space = requested_space(STUDY, self.quick, self.overrides, self.seeds,
                                study_options={"model": self.model})
        space.pop("rates", None)
        return space

    def spec(self) -> dict:
        """What fixes a search's outcomes (its identity): settings, seeds, range, resolution."""
        return {"study": STUDY, "template": self.template(), "low": self.low, "high": self.high,
                "resolution": self.resolution}


search_folder = sweep_path  # a search lives where a sweep of its name would


def default_study_storage(storage: str, name: str) -> str:
    """The SQLite URL of the study next to the search's files (local storage only)."""
    if is_uri(storage):
        raise ConfigError("--study-storage: give an SQLAlchemy URL (e.g. sqlite:///study.db or "
                          "postgresql://...) when --storage is a URI; the default SQLite file "
                          "needs a local folder")
    return study_file_url(search_folder(storage, name))


def validate(request: CriticalRequest) -> CriticalRequest:
    """Every check of the user's input, before any work: range, trials, sampler, resources,
    settings (a trial's config at both ends of the range)."""
    request = request.resolved()
    check_range(request.low, request.high)
    if request.trials < 1:
        raise ConfigError(f"--trials: must be at least 1, got {request.trials}")
    choice("--sampler", request.sampler, SAMPLERS)
    if not 0 < request.resolution < 1:
        raise ConfigError(f"--resolution: must be in (0, 1), got {request.resolution}")
    if request.cpus_per_trial <= 0 or request.gpus_per_trial < 0:
        raise ConfigError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    if request.study_storage is None:  # the default SQLite file needs a local folder
        default_study_storage(request.storage, request.search_name)
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


def restart_search(storage: str, name: str, study_url: str, default_url: bool) -> None:
    """Keep the old search as NAME.restarted-K: its folder (which holds the default SQLite
    study, found there again by ``analysis.critical_ratio.load``) and, in a user-given study
    storage, its study copied to the name NAME.restarted-K (then deleted under NAME)."""
    import optuna  # heavy: only when a search restarts

    kept = move_aside(storage, name)
    if kept:
        log.info(f"starting {name} over (--restart); the old search is now {kept}")
    if default_url:
        return
    rdb = open_study_storage(study_url, heartbeat=False)
    names = {s.study_name for s in optuna.get_all_studies(storage=rdb)}
    if name not in names:
        return
    old = location_name(kept) if kept else f"{name}.restarted-1"
    while old in names:
        old += "-1"
    optuna.copy_study(from_study_name=name, from_storage=rdb, to_storage=rdb,
                      to_study_name=old)
    optuna.delete_study(study_name=name, storage=rdb)
    if kept:
        where = Storage(search_folder(storage, location_name(kept)))
        if where.exists(SEARCH_STUDY_INFO_FILE):
            where.write_json({**where.read_json(SEARCH_STUDY_INFO_FILE), "study_name": old},
                             SEARCH_STUDY_INFO_FILE)
    log.info(f"the old study is now {old} in {study_url}")


def _next_run_name(folder: Storage) -> str:
    """run-1, run-2 ...: a Tune run per invocation, so each keeps its own trial folders."""
    k = 1
    while folder.is_dir(f"run-{k}"):
        k += 1
    return f"run-{k}"


def run_critical(request: CriticalRequest):
    """Validate, open (or continue) the study, train the missing dense runs, run the search on
    Ray Tune until the study holds ``--trials`` finished trials, then write and return the
    estimate (``analysis.critical_ratio.CriticalSearch``). Nothing is written before every
    input check (settings, storage, study storage, cluster, resources) has passed."""
    import optuna  # heavy: only once the input is valid

    request = validate(request)
    storage = resolve_storage(request.storage)
    name = request.search_name
    Storage(storage).check_writable()
    default_url = request.study_storage is None
    study_url = request.study_storage or default_study_storage(storage, name)
    spec = request.spec()
    folder = Storage(search_folder(storage, name))
    if not request.restart:
        check_same_spec(folder, SEARCH_SPEC_FILE, spec, "search", prefix="template.")
    finished = 0
    if not request.restart and not (
            default_url and not os.path.exists(study_url.removeprefix("sqlite:///"))):
        finished = finished_trials(study_url, name)  # also checks a user-given URL opens
    remaining = request.trials - finished
    if remaining > 0:
        connect_ray(request.address)
        check_resources(request.cpus_per_trial, request.gpus_per_trial)
    if request.restart:
        restart_search(storage, name, study_url, default_url)
    folder.write_json(spec, SEARCH_SPEC_FILE)
    # the default SQLite file is found next to the search's files (it moves with them on
    # --restart), so only a user-given URL is written down
    folder.write_json({"study_name": name,
                       "study_storage": None if default_url else study_url,
                       "sampler": request.sampler, "seed": request.seed}, SEARCH_STUDY_INFO_FILE)
    rdb = open_study_storage(study_url)
    study = optuna.create_study(study_name=name, storage=rdb, direction="maximize",
                                load_if_exists=True)
    study.set_user_attr("grok_spec", json.loads(json.dumps(spec)))
    failed = fail_stale_trials(study, log.info)
    if failed:
        log.info(f"marked {failed} stale trial(s) FAIL: they are not counted as results")
    log.info(f"search {name}: study {name} in {study_url}; {finished} finished trial(s), "
             f"{max(0, remaining)} to go (--trials {request.trials})")
    if remaining > 0:
        _search(request, storage, folder, study, rdb, finished, remaining)
    return write_outputs(folder.location)


def _dense_phase(request: CriticalRequest, storage: str, folder: str, slots: int) -> None:
    """The dense runs the store lacks (one per seed, shared by every trial of the search and by
    any sweep under the same storage), as a Tune run of their own in the search's folder."""
    cell = {**request.template(), "rates": [request.low]}
    config, seeds, _ = split_trial_config(cell)
    space = dense_phase_space([cell], ArtifactStore(storage), slots, min_users=1)
    if space is None:
        log.info(f"dense runs {config.dense_base().dense_key()} of seeds "
                 f"{','.join(map(str, seeds))}: in the store")
    run_dense_phase(space, "dense", folder, storage, cpus_per_trial=request.cpus_per_trial,
                    gpus_per_trial=request.gpus_per_trial, report_every=request.report_every)


def _search(request: CriticalRequest, storage: str, folder: Storage, study, rdb,
            finished: int, remaining: int) -> None:
    """The Tune run: OptunaSearch on the study behind a ConcurrencyLimiter, heartbeats, dense
    phase first; a progress line of the estimate every few finished trials."""
    import optuna  # heavy: only once a search runs
    from ray.tune.search import ConcurrencyLimiter

    slots = trial_slots(request.cpus_per_trial, request.gpus_per_trial)
    _dense_phase(request, storage, folder.location, slots)
    sampler = make_sampler(request.sampler, request.low, request.high, request.seed,
                           request.resolution, finished)
    told = {"count": 0}

    def on_told() -> None:
        told["count"] += 1
        if told["count"] % PRINT_EVERY == 0:
            progress_line(folder.location)

    searcher = study_search_class()(
        space={RATE_PARAM: optuna.distributions.FloatDistribution(request.low, request.high)},
        metric=METRIC, mode="max", sampler=sampler, study_name=study.study_name, storage=rdb,
        on_told=on_told)
    heartbeat = Heartbeat(rdb, searcher.running_trial_ids)
    heartbeat.start()
    run_name = _next_run_name(folder)
    log.info(f"{run_name}: {remaining} trial(s), {slots} at a time, sampler {request.sampler}; "
             f"each trains seeds {','.join(map(str, request.seeds))} at one rate")
    run = TuneRun(critical_ratio_trainable, request.template(), run_name, folder.location, storage,
                  cpus_per_trial=request.cpus_per_trial, gpus_per_trial=request.gpus_per_trial,
                  report_every=request.report_every,
                  trial_namer=lambda trial: f"{trial.trial_id}_rate="
                                            f"{trial.config.get(RATE_PARAM, 0):.4f}",
                  search_alg=ConcurrencyLimiter(searcher, max_concurrent=slots),
                  num_samples=remaining, max_failures=1, restore=False)
    try:
        with quiet_heartbeat_warnings():  # the searcher asks for trials with heartbeats on
            grid = fit(run)
    finally:
        heartbeat.stopped.set()
        fail_untold(study, searcher)
    unfinished = unfinished_trials(grid)
    if unfinished:
        raise SweepInterrupted(f"interrupted: {len(unfinished)} trial(s) unfinished (marked "
                               "FAIL in the study); rerun the same command to continue")


def progress_line(path: str) -> None:
    """Log the current estimate of the search at ``path`` and write its tables."""
    try:
        search = load_search(path)
    except ConfigError:
        return
    if search.members.empty:
        return
    estimate = search.estimate
    log.info(f"[{estimate.trials} trials, {estimate.members} members] upper edge "
             f"{estimate.upper.describe()}, lower edge {estimate.lower.describe()}, seeds "
             f"without a window {len(estimate.seeds_without_window)}/{len(estimate.per_seed)}")
    search.write_tables()


def write_outputs(path: str):
    """members.parquet, estimate.json, the study's user attributes and summary.png of the
    search at ``path``; returns its ``CriticalSearch``."""
    search = load_search(path)
    search.write_tables()
    if not search.members.empty:
        Storage(path).write_bytes(critical_summary_png(search), SUMMARY_FIGURE_FILE)
    return search
