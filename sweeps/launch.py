"""Launching a study as a Ray Tune grid sweep: Tuner, dense phase, resume and its checks.

Order of work, so that bad input never starts a trial: build the space (with ``--set``,
``--seeds`` and ``--rates``) and validate every cell's config (``sweeps.space``), check the
storage and that a resumed name keeps its settings, connect to Ray (``sweeps.cluster``; local
embedded by default) and check the requested resources exist, split cohorts into trials to fill
the slots, then train the dense runs that several trials share (once per sweep, as a Tuner of
their own) and finally run (or resume) the trials.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from grok_core.config import ConfigError
from grok_core.store import ArtifactStore, Storage, _is_uri
from grok_core.trainable import DEFAULT_REPORT_EVERY

from .cluster import alive_nodes, check_resources, connect_ray, trial_slots
from .space import grid_axes, requested_space, split_cohorts, validate_cell, validated_cells

Log = Callable[[str], None]
DEFAULT_STORAGE = "grok_sweeps"


@dataclass
class SweepRequest:
    """What a user asked for; see ``grok sweep --help``."""

    space: str
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
        """``--name``, else the space's name (``-quick`` for the quick version)."""
        return self.name or self.space + ("-quick" if self.quick else "")

    def space_dict(self) -> dict:
        """The study's param space with this request's overrides, seeds and rates."""
        return requested_space(self.space, self.quick, self.overrides, self.seeds, self.rates)


def sweep_path(storage: str, name: str) -> str:
    """Where Tune keeps the sweep ``name`` under the resolved ``storage``."""
    return f"{storage.rstrip('/')}/{name}"


def resolve_storage(location: str) -> str:
    """An absolute local path, or the URI unchanged (Ray Tune wants one of the two)."""
    return location if _is_uri(location) else os.path.abspath(location)


class SweepInterrupted(Exception):
    """The sweep stopped (Ctrl-C) with trials unfinished; rerunning the command resumes it."""


def _check_finished(grid, path: str) -> None:
    """SweepInterrupted if Tune returned with trials neither finished nor failed (it stops
    that way on Ctrl-C)."""
    unfinished = [r for r in grid if r.error is None
                  and not (r.metrics or {}).get("done_training")]
    if unfinished:
        raise SweepInterrupted(f"interrupted: {len(unfinished)} of {len(grid)} trial(s) of {path} "
                               "unfinished; rerun the same command to resume them")


def _trial_namer(axes: list[tuple[str, list]]) -> Callable:
    """Short trial directory names from the cell: index plus the grid values."""
    def name(trial) -> str:
        parts = []
        for path, _ in axes:
            value: Any = trial.config
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, dict) and "label" in value:  # a variant: its label
                value = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value["label"]))
            if isinstance(value, list):
                value = "-".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
            parts.append(f"{path.split('.')[-1]}={value:g}" if isinstance(value, float)
                         else f"{path.split('.')[-1]}={value}")
        return "_".join([trial.trial_id, *parts])[:120]
    return name


def _tuner(trainable, space: dict, name: str, storage: str, request: SweepRequest,
           axes: list[tuple[str, list]]):
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    callbacks = [JsonLoggerCallback()]
    if request.tensorboard:
        from ray.tune.logger import TBXLoggerCallback
        callbacks.append(TBXLoggerCallback())
    run_config = tune.RunConfig(
        name=name, storage_path=storage, callbacks=callbacks, verbose=1,
        failure_config=tune.FailureConfig(max_failures=3),
        # three, with checkpoints >= MIN_CHECKPOINT_SECONDS apart (grok_core.trial_run): the
        # one Tune's last saved experiment state names is never the one it deletes
        checkpoint_config=tune.CheckpointConfig(num_to_keep=3))
    # metric/mode only drive the progress table's best-so-far line (no search, no stopping)
    namer = _trial_namer(axes)  # the progress table and the folders name trials alike
    tune_config = tune.TuneConfig(reuse_actors=True, trial_name_creator=namer,
                                  trial_dirname_creator=namer,
                                  metric="test_acc_mean", mode="max")
    return tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config)


def _fit(trainable, space: dict, name: str, storage: str, request: SweepRequest,
         axes: list[tuple[str, list]], log: Log, spec: Optional[dict] = None):
    from ray import tune

    path = sweep_path(storage, name)
    if not request.restart and tune.Tuner.can_restore(path):
        log(f"resuming {path}: finished trials are kept, unfinished ones continue")
        tuner = tune.Tuner.restore(path, trainable=trainable, param_space=space,
                                   resume_unfinished=True, resume_errored=True)
    else:
        if request.restart:
            kept = _move_aside(storage, name)
            log(f"starting {path} over (--restart)" + (f"; the old one is now {kept}" if kept else ""))
        if spec is not None:
            Storage(storage).write_json(spec, name, SPACE_FILE)
        tuner = _tuner(trainable, space, name, storage, request, axes)
    return tuner.fit()


SPACE_FILE = "grok_space.json"  # what a sweep was started with, next to Tune's files


SPEC_KEYS = ("space", "max_cohort")  # what fixes a sweep's trials; the rest is information


def sweep_spec(request: SweepRequest) -> dict:
    """What a sweep is started with: the study, the requested space and the cohort cap."""
    return {"study": request.space, "space": request.space_dict(),
            "max_cohort": request.max_cohort}


def check_same_sweep(storage: str, name: str, spec: dict) -> None:
    """ConfigError if the sweep NAME exists with another spec: a resumed sweep keeps the
    trials it was started with, so new seeds, rates or settings would silently not apply."""
    from grok_core.config import changed_settings

    where = Storage(storage)
    if not where.exists(name, SPACE_FILE):
        return
    from ray import tune

    if not tune.Tuner.can_restore(sweep_path(storage, name)):
        return  # never got as far as Tune: nothing to resume, a new start is fine
    try:
        stored = where.read_json(name, SPACE_FILE)
    except ValueError:
        return
    wanted = json.loads(json.dumps(spec))  # tuples -> lists, as stored
    stored = {k: stored.get(k) for k in SPEC_KEYS}
    wanted = {k: wanted.get(k) for k in SPEC_KEYS}
    if stored == wanted:
        return
    changed = sorted({k.removeprefix("space.").removesuffix(".grid_search")
                      for k in changed_settings(stored, wanted)})
    raise ConfigError(f"sweep {where.display(name)} was started with other settings (differs in "
                      f"{', '.join(changed)}): rerun it as it was to resume it, or use --name "
                      "NEW for a new sweep, or --restart to start it over")


def _move_aside(storage: str, name: str) -> Optional[str]:
    """Rename an existing sweep folder to NAME.restarted-K (results are never deleted)."""
    import pyarrow.fs as pafs

    where = Storage(storage)
    if where.fs.get_file_info(where.path(name)).type != pafs.FileType.Directory:
        return None
    k = 1
    while where.fs.get_file_info(where.path(f"{name}.restarted-{k}")).type != pafs.FileType.NotFound:
        k += 1
    where.fs.move(where.path(name), where.path(f"{name}.restarted-{k}"))
    return where.display(f"{name}.restarted-{k}")


def dense_phase_space(cells: Sequence[dict], store: ArtifactStore, slots: int = 1,
                      max_cohort: int = 64) -> Optional[dict]:
    """A grid over the dense runs that more than one ticket trial needs and the store lacks
    (None if there are none). A dense run needed by one trial only is trained by that trial.

    Seeds of one dense config are split into enough trials to fill ``slots`` (and none above
    ``max_cohort`` members): on CPUs parallel trials beat one larger cohort."""
    users: dict[tuple[str, int], int] = {}
    configs: dict[str, dict] = {}
    for cell in cells:
        config = validate_cell(cell)
        if not config.needs_dense_base:
            continue
        base = config.dense_base()
        configs[base.dense_key()] = base.to_dict()
        for seed in set(cell["seeds"]):
            users[(base.dense_key(), seed)] = users.get((base.dense_key(), seed), 0) + 1
    needed: dict[str, list[int]] = {}
    for (key, seed), count in sorted(users.items()):
        if count > 1 and not store.has_dense(key, seed):
            needed.setdefault(key, []).append(seed)
    if not needed:
        return None
    per_trial = max(1, min(max_cohort, -(-sum(map(len, needed.values())) // slots)))
    runs = []
    for key, seeds in needed.items():
        settings = {k: v for k, v in configs[key].items() if k != "base"}
        runs += [{**settings, "seeds": seeds[i:i + per_trial]}
                 for i in range(0, len(seeds), per_trial)]
    return {"dense_run": {"grid_search": runs}}


def _dense_trainable(config: dict, store: str, report_every: int) -> None:
    """A dense-phase trial: unpack the grid value and run the ordinary trainable."""
    from grok_core.trainable import grok_trainable

    grok_trainable(config["dense_run"], store, report_every)


def _bound(trainable, request: SweepRequest, storage: str):
    """``trainable`` with its resources and the storage root and report cadence bound as
    parameters (so they stay out of the trials' params)."""
    from ray import tune

    bound = tune.with_parameters(trainable, store=storage, report_every=request.report_every)
    return tune.with_resources(bound, {"cpu": request.cpus_per_trial,
                                       "gpu": request.gpus_per_trial})


def build_space(request: SweepRequest, slots: int = 1) -> tuple[dict, list[dict]]:
    """The request's param space split into trials for ``slots`` parallel slots, and its
    validated cells (one per trial); no Ray needed."""
    space = split_cohorts(request.space_dict(), request.max_cohort, slots)
    return space, validated_cells(space)


def run_sweep(request: SweepRequest, log: Log = print):
    """Validate, connect, train missing dense runs once, then run or resume the sweep.
    Returns the ResultGrid of the trials; SweepInterrupted if it stopped early (Ctrl-C)."""
    from grok_core.trainable import grok_trainable

    spec = sweep_spec(request)
    build_space(request)  # every cell valid before anything is written or started
    storage = resolve_storage(request.storage)
    Storage(storage).check_writable()
    name = request.sweep_name
    if not request.restart:
        check_same_sweep(storage, name, spec)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # JSON only, by default
    # Tune saves the experiment state (trial params, results, which checkpoint to resume from)
    # every >= 10 s by default: a driver killed sooner left trials without params on storage.
    # Every 2 s keeps what a killed sweep leaves readable and resumable (checkpoints are >= 20 s
    # apart, grok_core.trial_run.MIN_CHECKPOINT_SECONDS); set the variable to change it.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    connect_ray(request.address)
    check_resources(request.cpus_per_trial, request.gpus_per_trial)
    slots = trial_slots(request.cpus_per_trial, request.gpus_per_trial)
    space, cells = build_space(request, slots)
    store = ArtifactStore(storage)
    log(f"sweep {name}: {len(cells)} trial(s) for {slots} slot(s), storage {storage}")
    nodes = len(alive_nodes())
    if nodes > 1 and not _is_uri(storage):
        log(f"note: {nodes} nodes share the sweep: every node must see {storage} (e.g. NFS), "
            "or give --storage a URI such as s3://bucket/sweeps")
    dense_space = dense_phase_space(cells, store, slots, request.max_cohort)
    if dense_space is not None:
        runs = len(dense_space["dense_run"]["grid_search"])
        log(f"dense phase: the dense runs several tickets need, trained once for the sweep "
            f"({runs} trial(s))")
        dense_grid = _fit(_bound(_dense_trainable, request, storage), dense_space,
                          f"{name}.dense", storage, request, [], log)
        _check_finished(dense_grid, f"{name}.dense")
    grid = _fit(_bound(grok_trainable, request, storage), space, name, storage, request,
                grid_axes(space), log, spec=spec)
    _check_finished(grid, name)
    return grid
