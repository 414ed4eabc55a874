"""``grok reproduce``: every study of the paper as the sweep it already is, then the report.

Studies run one after another (each sweep already spreads its trials over every CPU or GPU of the
cluster; running sweeps side by side would only split the same slots and interleave their
dense phases). A study whose sweep finished under the storage is skipped, an unfinished one is
resumed (the sweep's own resume), and the report (``analysis.report``) is written at the end
from whatever finished. Ctrl-C stops the current sweep; rerunning the command continues. The
critical-ratio search (``grok critical-ratio``) runs as the study ``critical_ratio_search``,
after the grid studies, and at full size the transformer's search as
``critical_ratio_search-transformer`` (App. E's loop ran on the authors' transformer). Each
study's wall time is kept in ``<storage>/reproduce.json``.

Left out by default: ``mnist`` (it reads IDX files from a folder you give: ``--only mnist --set
task.data_dir=...`` runs it).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from analysis.critical_ratio import is_search
from analysis.critical_ratio import load as load_search
from analysis.report import write_report
from analysis.results import load as load_sweep
from grok_core.config import choice
from grok_core.layout import CRITICAL_RATIO_SEARCH as SEARCH
from grok_core.layout import REPRODUCE_TIMES_FILE, critical_search_name
from grok_core.store import Storage
from search_spaces import study_names

from .cluster import check_reachable
from .critical_ratio_search import CriticalRequest, run_critical, search_folder, validate
from .grid_sweep import SweepRequest, build_space, resolve_storage, run_sweep, sweep_path

log = logging.getLogger("grok.sweeps")
OLD_SEARCH_NAMES = {"critical_search": SEARCH}  # the search's name before it was spelled as here
# studies that need data from the user, run only when named with --only
NEEDS_DATA = ("mnist",)
# The critical-ratio searches, by name: the architecture each searches. The transformer's runs
# at full size only (its quick size shows no window, as the MLP's does not; the MLP's quick
# search already shows the plateau, and the quick reproduction keeps to its 10 minutes).
SEARCHES = {SEARCH: "mlp", critical_search_name("transformer"): "transformer"}
FULL_SIZE_ONLY = (critical_search_name("transformer"),)


@dataclass
class ReproduceRequest:
    """What ``grok reproduce`` was asked for."""

    only: Optional[Sequence[str]] = None
    quick: bool = False
    seeds: Optional[Sequence[int]] = None  # every study's seeds (None: each study's own)
    storage: str = ""
    address: Optional[str] = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    overrides: Sequence[str] = field(default_factory=tuple)
    out: Optional[str] = None  # the report's local folder (``analysis.report.report_folder``)
    study_storage: Optional[str] = None  # the critical-ratio search's Optuna study (a URL)


def studies(only: Optional[Sequence[str]], quick: bool = False) -> list[str]:
    """The studies to run: ``only`` (each checked), else every study but those needing data
    (and, quick, those run at full size only), the critical-ratio searches last."""
    names = [*study_names(), *SEARCHES]
    if only:
        only = [OLD_SEARCH_NAMES.get(name, name) for name in only]
        for name in only:
            choice("--only", name, names)
        return list(dict.fromkeys(only))
    return [name for name in names
            if name not in NEEDS_DATA and not (quick and name in FULL_SIZE_ONLY)]


def finished(path: str) -> bool:
    """Whether the sweep at ``path`` exists and every one of its trials finished."""
    if not Storage(path).is_dir():
        return False
    try:
        loaded = load_sweep(path)
    except Exception:  # a sweep that cannot be read is not finished  # noqa: BLE001
        return False
    return not loaded.trials.empty and bool(loaded.trials["finished"].all())


def search_finished(path: str, wanted: int) -> bool:
    """Whether the critical-ratio search at ``path`` holds ``wanted`` finished trials."""
    if not Storage(path).is_dir() or not is_search(path):
        return False
    try:
        return load_search(path).trials >= wanted
    except Exception:  # an unreadable search is not finished  # noqa: BLE001
        return False


def _requests(request: ReproduceRequest, names: list[str]) -> dict:
    """Each study's sweep (or search) request, every one validated before any study runs, so
    a bad ``--set`` fails at once rather than after hours of the studies before it."""
    shared = dict(quick=request.quick, storage=request.storage, address=request.address,
                  cpus_per_trial=request.cpus_per_trial, gpus_per_trial=request.gpus_per_trial,
                  overrides=tuple(request.overrides), seeds=request.seeds)
    requests = {}
    for name in names:
        if name in SEARCHES:
            requests[name] = validate(search_request(SEARCHES[name], **shared,
                                                     study_storage=request.study_storage))
        else:
            requests[name] = SweepRequest(study=name, **shared)
            build_space(requests[name])
    return requests


def search_request(model: str, **settings) -> CriticalRequest:
    """The critical-ratio search of ``model`` as ``grok reproduce`` runs it; ``settings`` are
    the reproduction's (``CriticalRequest`` fields), the architecture is added to its
    overrides."""
    overrides = tuple(settings.pop("overrides", ())) + (
        () if model == "mlp" else (f"model.name={model}",))
    return CriticalRequest(**settings, overrides=overrides)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _record_time(storage: str, name: str, seconds: float) -> None:
    where = Storage(storage)
    times = where.read_json(REPRODUCE_TIMES_FILE) if where.exists(REPRODUCE_TIMES_FILE) else {}
    times[name] = {"seconds": round(seconds, 1), "ended": time.strftime("%Y-%m-%d %H:%M:%S")}
    where.write_json(times, REPRODUCE_TIMES_FILE)


def _done_before(name: str, job, storage: str) -> bool:
    """Whether the study's sweep (or search) already finished under ``storage``."""
    if name in SEARCHES:
        return search_finished(search_folder(storage, job.search_name), job.trials)
    return finished(sweep_path(storage, job.sweep_name))


def _run(name: str, job) -> bool:
    """Run (or resume) the study; whether every trial finished."""
    if name in SEARCHES:
        return run_critical(job).trials >= job.trials
    return not any(result.error is not None for result in run_sweep(job))


def reproduce(request: ReproduceRequest) -> tuple[str, list, list]:
    """Run (or skip, or resume) each study's sweep, then write the report; returns (page,
    sections, studies with failed trials). Progress: one line per study with how many are
    done, running and left, and each sweep's own progress below it."""
    names = studies(request.only, request.quick)
    storage = resolve_storage(request.storage)
    if request.address or os.environ.get("RAY_ADDRESS"):
        check_reachable(request.address or os.environ["RAY_ADDRESS"])
    Storage(storage).check_writable()
    requests = _requests(request, names)
    began, failed = time.monotonic(), []
    for done, name in enumerate(names):
        job = requests[name]
        left = len(names) - done - 1
        if _done_before(name, job, storage):
            log.info(f"reproduce: {done} done, {name} finished before (skipped), {left} left")
            continue
        log.info(f"reproduce: {done} done, running {name}, {left} left "
            f"({_minutes(time.monotonic() - began)} so far)")
        start = time.monotonic()
        complete = _run(name, job)
        _record_time(storage, name, time.monotonic() - start)
        log.info(f"reproduce: {name} {'done' if complete else 'ended with failed trials'} in "
            f"{_minutes(time.monotonic() - start)}")
        if not complete:
            failed.append(name)
    log.info(f"reproduce: {len(names)} stud{'y' if len(names) == 1 else 'ies'} in "
        f"{_minutes(time.monotonic() - began)}; writing the report")
    return (*write_report(storage, request.out), failed)
