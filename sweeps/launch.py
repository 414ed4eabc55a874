"""Launching a study as a Ray Tune sweep: param space, validation, Ray, dense phase, resume.

Order of work, so that bad input never starts a trial: build the space (with ``--set``,
``--seeds`` and ``--rates``), split large cohorts, expand its grid and validate every cell's
config, check the storage and that a resumed name keeps its settings, connect to Ray (local
embedded by default), check the requested resources exist, then train the dense runs that several
trials share (once per sweep, as a Tuner of their own) and finally run (or resume) the trials.
"""
from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

from grok_core.config import ConfigError, ExperimentConfig, typed_override
from grok_core.store import ArtifactStore, Storage, _is_uri

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
    report_every: int = 500
    tensorboard: bool = False

    @property
    def sweep_name(self) -> str:
        """``--name``, else the space's name (``-quick`` for the quick version)."""
        return self.name or self.space + ("-quick" if self.quick else "")


def sweep_path(storage: str, name: str) -> str:
    """Where Tune keeps the sweep ``name`` under the resolved ``storage``."""
    return f"{storage.rstrip('/')}/{name}"


# --- the param space ------------------------------------------------------------------------
def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def _set_path(space: dict, dotted: str, value: Any) -> None:
    node = space
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict) or _is_grid(child):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def apply_overrides(space: dict, overrides: Iterable[str]) -> dict:
    """``--set key=value`` on every trial: the typed value replaces whatever (grid or not) is
    there; unknown keys and ill-typed values raise ConfigError."""
    space = copy.deepcopy(space)
    for text in overrides:
        key, value = typed_override(text)
        _set_path(space, key, value)
    return space


def _grid_axes(space: Any, prefix: str = "") -> list[tuple[str, list]]:
    if _is_grid(space):
        return [(prefix, list(space["grid_search"]))]
    if isinstance(space, dict):
        return [axis for key, value in space.items()
                for axis in _grid_axes(value, f"{prefix}.{key}" if prefix else key)]
    return []


def grid_axes(space: dict) -> list[tuple[str, list]]:
    """(dotted path, values) of every grid_search axis of a space."""
    return _grid_axes(space)


def expand_cells(space: dict) -> list[dict]:
    """Every trial config of a grid space (the cartesian product of its grid axes)."""
    axes = grid_axes(space)
    cells = []
    for values in itertools.product(*[v for _, v in axes]) if axes else [()]:
        cell = copy.deepcopy(space)
        for (path, _), value in zip(axes, values):
            _set_path(cell, path, value)
        cells.append(cell)
    return cells


def validate_cell(cell: dict) -> ExperimentConfig:
    """The cell's typed config (ConfigError names the bad key); seeds and rates checked too."""
    from grok_core.config import check_pruning_rate
    from grok_core.trainable import split_trial_config

    seeds = cell.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds: expected a non-empty list of non-negative integers, got {seeds!r}")
    for rate in cell.get("rates") or []:
        check_pruning_rate(rate, "rates")
    config, _, _ = split_trial_config(cell)
    return config


def build_space(request: SweepRequest) -> tuple[dict, list[dict]]:
    """The param space of the request and its validated cells (before any Ray work)."""
    space = split_large_cohorts(requested_space(request), request.max_cohort)
    cells = expand_cells(space)
    for cell in cells:
        validate_cell(cell)
    return space, cells


def requested_space(request: SweepRequest) -> dict:
    """The study's param space with the request's overrides, seeds and rates (not yet split
    into trials)."""
    from search_spaces import get_space

    space = get_space(request.space).param_space(quick=request.quick)
    space = apply_overrides(space, request.overrides)
    if request.seeds is not None:
        space["seeds"] = list(request.seeds)
    if request.rates is not None:
        if space.get("recipe") != "ticket":
            raise ConfigError(f"--rates: the {request.space} space trains dense runs, which have "
                              "no pruning rate")
        space["rates"] = list(request.rates)
    return space


def split_large_cohorts(space: dict, max_cohort: int) -> dict:
    """Members per trial = seeds x rates (seeds alone for dense runs); a cell above
    ``max_cohort`` is split into trials by new grid axes: by groups of seeds first, so that
    each dense run still serves one trial only and no dense phase is needed, and only when one
    seed's rates alone exceed the cap, by chunks of rates as well."""
    if max_cohort < 1:
        raise ConfigError(f"--max-cohort: must be at least 1, got {max_cohort}")
    seeds, rates = space.get("seeds"), space.get("rates")
    if not isinstance(seeds, list):
        return space
    per_seed = len(rates) if isinstance(rates, list) and space.get("recipe") == "ticket" else 1
    if len(seeds) * per_seed <= max_cohort:
        return space
    seeds_per_trial = max(1, max_cohort // per_seed)
    split = {**space, "seeds": {"grid_search": [seeds[i:i + seeds_per_trial]
                                                for i in range(0, len(seeds), seeds_per_trial)]}}
    if per_seed > max_cohort:
        split["rates"] = {"grid_search": [rates[i:i + max_cohort]
                                          for i in range(0, len(rates), max_cohort)]}
    return split


# --- storage and Ray -------------------------------------------------------------------------
def resolve_storage(location: str) -> str:
    """An absolute local path, or the URI unchanged (Ray Tune wants one of the two)."""
    return location if _is_uri(location) else os.path.abspath(location)


def check_reachable(address: str) -> None:
    """ConfigError unless something listens at HOST:PORT (checked before ray.init waits)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--address: expected HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster reachable ({exc.strerror or exc})"
                          ) from None


def use_prestarted_workers() -> None:
    """Let trial actors start on the worker processes Ray prestarts, not fresh ones.

    Ray Tune gives every trial actor one environment variable, for PyTorch Lightning
    (``PL_DISABLE_FORK``), and Ray boots a fresh worker process for any actor with its own
    environment variables instead of taking one it prestarted: 1-1.5 s more per trial actor
    here (measured: trainable entered 1.0-1.7 s instead of 2.7-3.2 s after the Tuner started).
    Nothing here uses Lightning. Only that one variable is dropped; if Ray renames things this
    does nothing."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:
        return
    env = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    if isinstance(env, dict):
        env.pop("PL_DISABLE_FORK", None)


def connect_ray(address: Optional[str]) -> None:
    """Join the cluster at ``address`` (or RAY_ADDRESS), else start a local embedded Ray."""
    import ray

    use_prestarted_workers()
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address)
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    else:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)


def _alive_nodes() -> list[dict]:
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def _cluster_cpus() -> float:
    import ray

    return float(ray.cluster_resources().get("CPU", 1))


def check_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """ConfigError if no node could ever hold one trial (instead of a trial pending forever)."""
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise ConfigError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    nodes = _alive_nodes()
    fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= cpus_per_trial
            and n["Resources"].get("GPU", 0) >= gpus_per_trial]
    if not fits:
        total_gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        what = (f"{gpus_per_trial} GPU(s) per trial, the cluster has {total_gpus:g} GPU(s)"
                if gpus_per_trial > total_gpus or total_gpus == 0 and gpus_per_trial > 0
                else f"{cpus_per_trial} CPU(s) per trial on one node")
        raise ConfigError(f"no node can run a trial: {what}")


# --- running ---------------------------------------------------------------------------------
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
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2))
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


def sweep_spec(request: SweepRequest) -> dict:
    """What fixes a sweep's trials: the requested space and the cohort cap."""
    return {"space": requested_space(request), "max_cohort": request.max_cohort}


def check_same_sweep(storage: str, name: str, spec: dict) -> None:
    """ConfigError if the sweep NAME exists with another spec: a resumed sweep keeps the
    trials it was started with, so new seeds, rates or settings would silently not apply."""
    from grok_core.config import flatten_settings

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
    if stored == wanted:
        return
    old, new = flatten_settings(stored), flatten_settings(wanted)
    changed = sorted({k.removeprefix("space.").removesuffix(".grid_search")
                      for k in old.keys() | new.keys() if old.get(k) != new.get(k)})
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
        if config.recipe != "ticket":
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


def _dense_trainable(config: dict) -> None:
    """A dense-phase trial: unpack the grid value and run the ordinary trainable."""
    from grok_core.trainable import grok_trainable

    grok_trainable({**config["dense_run"], "_store": config["_store"],
                    "_report_every": config["_report_every"]})


def run_sweep(request: SweepRequest, log: Log = print):
    """Validate, connect, train missing dense runs once, then run or resume the sweep.
    Returns the ResultGrid of the trials; SweepInterrupted if it stopped early (Ctrl-C)."""
    from grok_core.trainable import grok_trainable

    space, cells = build_space(request)
    storage = resolve_storage(request.storage)
    Storage(storage).check_writable()
    name = request.sweep_name
    spec = sweep_spec(request)
    if not request.restart:
        check_same_sweep(storage, name, spec)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # JSON only, by default
    connect_ray(request.address)
    check_resources(request.cpus_per_trial, request.gpus_per_trial)
    from ray import tune

    resources = {"cpu": request.cpus_per_trial, "gpu": request.gpus_per_trial}
    private = {"_store": storage, "_report_every": request.report_every}
    store = ArtifactStore(storage)
    log(f"sweep {name}: {len(cells)} trial(s), storage {storage}")
    nodes = len(_alive_nodes())
    if nodes > 1 and not _is_uri(storage):
        log(f"note: {nodes} nodes share the sweep: every node must see {storage} (e.g. NFS), "
            "or give --storage a URI such as s3://bucket/sweeps")
    slots = max(1, int(_cluster_cpus() // request.cpus_per_trial))
    dense_space = dense_phase_space(cells, store, slots, request.max_cohort)
    if dense_space is not None:
        runs = len(dense_space["dense_run"]["grid_search"])
        log(f"dense phase: the dense runs several tickets need, trained once for the sweep "
            f"({runs} trial(s))")
        dense_grid = _fit(tune.with_resources(_dense_trainable, resources),
                          {**dense_space, **private}, f"{name}.dense", storage, request, [], log)
        _check_finished(dense_grid, f"{name}.dense")
    grid = _fit(tune.with_resources(grok_trainable, resources), {**space, **private}, name,
                storage, request, grid_axes(space), log, spec=spec)
    _check_finished(grid, name)
    return grid
