"""``grok reproduce``: every study of the paper as the sweep it already is, then the report.

Studies run one after another (each sweep already spreads its trials over every CPU or GPU of the
cluster; running sweeps side by side would only split the same slots and interleave their
dense phases). A study whose sweep finished under the storage is skipped, an unfinished one is
resumed (the sweep's own resume), and the report (``analysis.report``) is written at the end
from whatever finished. Ctrl-C stops the current sweep; rerunning the command continues.

Left out by default: ``mnist`` (it reads IDX files from a folder you give: ``--only mnist --set
task.data_dir=...`` runs it) and the critical-ratio search (``grok critical-ratio``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from grok_core.config import ConfigError

# studies that need data from the user, run only when named with --only
NEEDS_DATA = ("mnist",)


@dataclass
class ReproduceRequest:
    """What ``grok reproduce`` was asked for."""

    only: Optional[Sequence[str]] = None
    quick: bool = False
    storage: str = ""
    address: Optional[str] = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    overrides: Sequence[str] = field(default_factory=tuple)


def studies(only: Optional[Sequence[str]]) -> list[str]:
    """The studies to run: ``only`` (each checked), else every study but those needing data."""
    from search_spaces import space_names

    names = space_names()
    if only:
        for name in only:
            if name not in names:
                from grok_core.config import choice

                choice("--only", name, names)
        return list(only)
    return [name for name in names if name not in NEEDS_DATA]


def finished(path: str) -> bool:
    """Whether the sweep at ``path`` exists and every one of its trials finished."""
    import os

    if not os.path.isdir(path):
        return False
    from analysis.results import load

    try:
        loaded = load(path)
    except Exception:  # a sweep that cannot be read is not finished  # noqa: BLE001
        return False
    return not loaded.trials.empty and bool(loaded.trials["finished"].all())


def reproduce(request: ReproduceRequest, log: Callable[[str], None]) -> tuple[str, list]:
    """Run (or skip, or resume) each study's sweep, then write the report; (page, sections)."""
    from analysis.report import write_report

    from .launch import SweepRequest, resolve_storage, run_sweep, sweep_path

    names = studies(request.only)
    storage = resolve_storage(request.storage)
    if "://" in storage:
        raise ConfigError("grok reproduce: the report needs a local --storage folder")
    for i, name in enumerate(names, start=1):
        sweep = SweepRequest(space=name, quick=request.quick, storage=request.storage,
                             address=request.address, cpus_per_trial=request.cpus_per_trial,
                             gpus_per_trial=request.gpus_per_trial,
                             overrides=tuple(request.overrides))
        path = sweep_path(storage, sweep.sweep_name)
        if finished(path):
            log(f"reproduce [{i}/{len(names)}] {name}: finished before, skipped")
            continue
        log(f"reproduce [{i}/{len(names)}] {name}: running ({len(names) - i} left after it)")
        run_sweep(sweep, log=log)
    return write_report(storage)
