"""``grok sweep``: a study as a Ray Tune grid sweep, its dense phase, resume and checks.

Order of work, so that bad input never starts a trial: build the space (with ``--set``,
``--seeds`` and ``--rates``) and validate every cell's config (``sweeps.space``), check the
storage and that a resumed name keeps its settings, connect to Ray (``sweeps.cluster``; local
embedded by default) and check the requested resources exist, split cohorts into trials to fill
the slots, then train the dense runs that several trials share (``sweeps.dense_phase``) and
finally run (or resume) the trials (``sweeps.tune_runner``).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from grok_core.layout import DEFAULT_STORAGE, DENSE_PHASE_SUFFIX, SWEEP_SPEC_FILE
from grok_core.store import ArtifactStore, Storage, endpoint_in_uri, is_uri, join_location

from .cluster import alive_nodes, check_resources, connect_ray, trial_slots
from .dense_phase import dense_phase_space, run_dense_phase
from .space import grid_axes, requested_space, split_cohorts, validated_cells
from .stored_spec import check_same_spec
from .trainable import DEFAULT_REPORT_EVERY, grok_trainable
from .tune_runner import TuneRun, can_restore, check_finished, fit, move_aside

log = logging.getLogger("grok.sweeps")


@dataclass
class SweepRequest:
    """What a user asked for; see ``grok sweep --help``."""

    study: str
    overrides: Sequence[str] = ()
    seeds: Optional[Sequence[int]] = None
    rates: Optional[Sequence[float]] = None
    quick: bool = False
    name: Optional[str] = None
    storage: str = DEFAULT_STORAGE
    address: Optional[str] = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    restart: bool = False
    max_cohort: int = 64
    report_every: int = DEFAULT_REPORT_EVERY
    tensorboard: bool = False

    @property
    def sweep_name(self) -> str:
        """``--name``, else the study's name (``-quick`` for the quick version)."""
        return self.name or self.study + ("-quick" if self.quick else "")

    def space_dict(self) -> dict:
        """The study's param space with this request's overrides, seeds and rates."""
        return requested_space(self.study, self.quick, self.overrides, self.seeds, self.rates)


def sweep_path(storage: str, name: str) -> str:
    """Where Tune keeps the sweep (or search) ``name`` under the resolved ``storage``."""
    return join_location(storage, name)


def resolve_storage(location: str) -> str:
    """An absolute local path, or the URI (Ray Tune wants one of the two) with the S3 endpoint
    of the driver's environment written in (``endpoint_in_uri``)."""
    return endpoint_in_uri(location) if is_uri(location) else os.path.abspath(location)


def _trial_namer(axes: list[tuple[str, list]]) -> Callable:
    """Short trial directory names from the cell: index plus the grid values."""
    def name(trial) -> str:
        parts = []
        for path, _ in axes:
            value: Any = trial.config
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, list) and value and isinstance(value[0], dict):
                # a variant group: its first label and how many more
                value = _label(value[0]) + (f"+{len(value) - 1}" if len(value) > 1 else "")
            if isinstance(value, dict) and "label" in value:  # a variant: its label
                value = _label(value)
            if isinstance(value, list):
                value = "-".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
            parts.append(f"{path.split('.')[-1]}={value:g}" if isinstance(value, float)
                         else f"{path.split('.')[-1]}={value}")
        return "_".join([trial.trial_id, *parts])[:120]
    return name


def _label(variant: dict) -> str:
    """A variant's label as it can stand in a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(variant.get("label")))


SPEC_KEYS = ("space", "max_cohort")  # what fixes a sweep's trials; the rest is information


def sweep_spec(request: SweepRequest) -> dict:
    """What a sweep is started with: the study, the requested space and the cohort cap."""
    return {"study": request.study, "space": request.space_dict(),
            "max_cohort": request.max_cohort}


def check_same_sweep(storage: str, name: str, spec: dict) -> None:
    """ConfigError if the sweep NAME exists with another spec (``stored_spec``); a folder Tune
    never got to is no sweep to resume, so a new start is fine there."""
    folder = Storage(sweep_path(storage, name))
    if folder.exists(SWEEP_SPEC_FILE) and can_restore(sweep_path(storage, name)):
        check_same_spec(folder, SWEEP_SPEC_FILE, spec, "sweep", keys=SPEC_KEYS,
                        prefix="space.")


def build_space(request: SweepRequest, slots: int = 1) -> tuple[dict, list[dict]]:
    """The request's param space split into trials for ``slots`` parallel slots, and its
    validated cells (one per trial); no Ray needed."""
    space = split_cohorts(request.space_dict(), request.max_cohort, slots)
    return space, validated_cells(space)


def run_sweep(request: SweepRequest):
    """Validate, connect, train missing dense runs once, then run or resume the sweep.
    Returns the ResultGrid of the trials; SweepInterrupted if it stopped early (Ctrl-C)."""
    spec = sweep_spec(request)
    build_space(request)  # every cell valid before anything is written or started
    storage = resolve_storage(request.storage)
    Storage(storage).check_writable()
    name = request.sweep_name
    if not request.restart:
        check_same_sweep(storage, name, spec)
    connect_ray(request.address)
    check_resources(request.cpus_per_trial, request.gpus_per_trial)
    slots = trial_slots(request.cpus_per_trial, request.gpus_per_trial)
    space, cells = build_space(request, slots)
    log.info(f"sweep {name}: {len(cells)} trial(s) for {slots} slot(s), storage {storage}")
    nodes = len(alive_nodes())
    if nodes > 1 and not is_uri(storage):
        log.info(f"note: {nodes} nodes share the sweep: every node must see {storage} (e.g. "
                 "NFS), or give --storage a URI such as s3://bucket/sweeps")
    resources = {"cpus_per_trial": request.cpus_per_trial,
                 "gpus_per_trial": request.gpus_per_trial, "report_every": request.report_every}
    run_dense_phase(dense_phase_space(cells, ArtifactStore(storage), slots, request.max_cohort),
                    f"{name}{DENSE_PHASE_SUFFIX}", storage, storage, restore=not request.restart,
                    **resources)
    if request.restart:
        kept = move_aside(storage, name)
        log.info(f"starting {sweep_path(storage, name)} over (--restart)"
                 + (f"; the old one is now {kept}" if kept else ""))
    if request.restart or not can_restore(sweep_path(storage, name)):
        Storage(storage).write_json(spec, name, SWEEP_SPEC_FILE)
    run = TuneRun(grok_trainable, space, name, storage, storage, trial_namer=_trial_namer(
                      grid_axes(space)), tensorboard=request.tensorboard,
                  restore=not request.restart,
                  # metric/mode only drive the progress table's best-so-far line
                  tune_config={"metric": "test_acc_mean", "mode": "max"}, **resources)
    grid = fit(run)
    check_finished(grid, name)
    return grid
