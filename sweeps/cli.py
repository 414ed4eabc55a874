"""The ``grok`` command.

    grok train RECIPE [--seeds 0,1,2] [--rates 0.5,0.6] [--set key=value ...] [--out DIR]
                      [--store DIR|URI] [--json] [--device auto|cpu|cuda]
    grok keys         every settable key with its default and help
    grok spaces       the studies grok sweep can run
    grok sweep SPACE  [--quick] [--seeds] [--rates] [--set key=value ...] [--name] [--storage]
                      [--address HOST:PORT] [--cpus-per-trial] [--gpus-per-trial] [--max-cohort]
                      [--report-every] [--restart] [--tensorboard]
    grok critical-ratio [--set key=value ...] [--seeds] [--low] [--high] [--trials] [--sampler]
                      [--name] [--storage] [--study-storage URL] [--address] [--cpus-per-trial]
                      [--gpus-per-trial] [--restart] [--quick]
    grok results PATH [--csv FILE] [--parquet FILE] [--figure PNG]   (a sweep or a search)

User errors (bad key, bad value, unwritable directory ...) print one line and exit with code 2
before any work starts.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import TYPE_CHECKING, Optional, Sequence

from grok_core.config import (ConfigError, ExperimentConfig, RECIPES, check_pruning_rate, choice,
                              key_help, plain_value)

DEFAULT_STORE = "grok_store"
DENSE_HAS_NO_RATE = "--rates: a dense run has no pruning rate; use the ticket recipe"
DEFAULT_OUT_ROOT = "grok_out"


if TYPE_CHECKING:
    from analysis.results import SweepResults


class UsageError(ConfigError):
    """Bad command-line usage."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line (exit code 2) instead of usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' or a mix ('0-2,7') -> sorted unique seeds."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if "-" in part[1:]:
                low, high = part.split("-", 1) if not part.startswith("-") else (part, "")
                seeds += list(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UsageError(f"--seeds: expected integers like 0,1,2 or 0-4, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise UsageError(f"--seeds: expected non-negative integers like 0,1,2, got {text!r}")
    return sorted(set(seeds))


def parse_rates(text: str) -> list[float]:
    """'0.5,0.6' -> [0.5, 0.6], each in [0, 1)."""
    try:
        rates = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"--rates: expected numbers like 0.5,0.6, got {text!r}") from None
    if not rates:
        raise UsageError("--rates: give at least one pruning rate")
    for rate in rates:
        check_pruning_rate(rate, "--rates")
    return list(dict.fromkeys(rates))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``grok`` (built on call, never at import)."""
    parser = _Parser(prog="grok", description="Grokking-ticket experiments.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser(
        "train", help="run one experiment (a cohort of seeds x pruning rates) without Ray")
    train.add_argument("recipe", help=f"one of: {', '.join(RECIPES)}")
    train.add_argument("--seeds", default="0", help="model seeds, e.g. 0,1,2 or 0-4 (default 0)")
    train.add_argument("--rates", default=None,
                       help="ticket pruning rates, e.g. 0.5,0.6 (default: prune.rate)")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a setting (repeatable); see `grok keys`")
    train.add_argument("--out", default=None,
                       help=f"output directory (default {DEFAULT_OUT_ROOT}/<recipe>-<config hash>)")
    train.add_argument("--store", default=os.environ.get("GROK_STORE", DEFAULT_STORE),
                       help="artifact store root, a directory or URI (default $GROK_STORE or "
                            f"./{DEFAULT_STORE})")
    train.add_argument("--json", action="store_true",
                       help="print the member rows as a JSON list on stdout (nothing else)")
    train.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    commands.add_parser("keys", help="list every settable key with its default and help")
    commands.add_parser("spaces", help="list the studies (search spaces) grok sweep can run")
    sweep = commands.add_parser("sweep", help="run a study as a Ray Tune sweep (resumes by name)")
    sweep.add_argument("space", help="a study; see `grok spaces`")
    sweep.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a setting in every trial (repeatable)")
    sweep.add_argument("--seeds", default=None, help="model seeds of every cell, e.g. 0-4")
    sweep.add_argument("--rates", default=None,
                       help="pruning rates of every ticket cell, e.g. 0.5,0.6 "
                            "(default: the space's)")
    sweep.add_argument("--quick", action="store_true",
                       help="the study's reduced version (minutes on a laptop)")
    sweep.add_argument("--name", default=None, help="sweep name (default: the space name)")
    sweep.add_argument("--storage", default=os.environ.get("GROK_STORAGE", "grok_sweeps"),
                       help="results root, a directory or URI (default $GROK_STORAGE or "
                            "./grok_sweeps); dense runs are shared under <storage>/artifacts")
    sweep.add_argument("--address", default=None,
                       help="Ray cluster HOST:PORT (default $RAY_ADDRESS, else local Ray)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0)
    sweep.add_argument("--gpus-per-trial", type=float, default=0.0,
                       help="fractions allowed: several small trials share a GPU")
    sweep.add_argument("--max-cohort", type=int, default=64,
                       help="most members (seeds x rates) stacked in one trial")
    sweep.add_argument("--report-every", type=int, default=500,
                       help="steps between reports and checkpoints of a trial")
    sweep.add_argument("--restart", action="store_true", help="start over instead of resuming")
    sweep.add_argument("--tensorboard", action="store_true", help="also log TensorBoard files")
    _add_critical_parser(commands)
    results = commands.add_parser(
        "results", help="aggregated table of a sweep, or the estimate of a critical-ratio "
                        "search (no Ray needed)")
    results.add_argument("path", help="<storage>/<sweep or search name>, a directory or URI")
    results.add_argument("--csv", default=None, help="also write the table as CSV here")
    results.add_argument("--parquet", default=None, help="also write the table as parquet here")
    results.add_argument("--figure", default=None, metavar="PNG",
                         help="also draw the sweep here: test accuracy curves, and t_mem / t_gen "
                              "per pruning rate and cell")
    results.add_argument("--paper-figure", default=None, metavar="PNG",
                         help="also draw the figure the paper draws for the sweep's study "
                              "(norm_control, pai, edge_popup, structure)")
    again = commands.add_parser(
        "reproduce", help="run every study (skipping finished ones, resuming the others), then "
                          "write the report")
    again.add_argument("--only", default=None,
                       help="comma-separated studies of `grok spaces`, or critical_search (the "
                            "Optuna search of grok critical-ratio); default: all but mnist, "
                            "which needs --set task.data_dir")
    again.add_argument("--quick", action="store_true", help="the quick version of each study")
    again.add_argument("--storage", default=os.environ.get("GROK_STORAGE", "grok_sweeps"),
                       help="where the sweeps and the report go")
    again.add_argument("--address", default=None, help="Ray cluster HOST:PORT (default "
                                                       "$RAY_ADDRESS, else local Ray)")
    again.add_argument("--cpus-per-trial", type=float, default=1.0)
    again.add_argument("--gpus-per-trial", type=float, default=0.0)
    again.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="a setting applied to every study run")
    report = commands.add_parser(
        "report", help="write the reproduction report (one HTML page: every claim, its figure, "
                       "numbers and verdict) from the sweeps finished under a storage")
    report.add_argument("storage", help="the folder the sweeps were written to (--storage)")
    report.add_argument("--out", default=None, help="where to write index.html and its figures "
                                                    "(default STORAGE/report)")
    return parser


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``grok reproduce``: each study's sweep in turn, then the report."""
    from sweeps.launch import SweepInterrupted
    from sweeps.reproduce import ReproduceRequest, reproduce

    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    request = ReproduceRequest(only=only, quick=args.quick, storage=args.storage,
                               address=args.address, cpus_per_trial=args.cpus_per_trial,
                               gpus_per_trial=args.gpus_per_trial, overrides=args.overrides)
    try:
        path, sections, failed = reproduce(request, _log)
    except SweepInterrupted as stopped:
        _log(f"grok: {stopped}; rerun the same command to continue")
        return 130
    _print_verdicts(sections, path)
    if failed:
        _log(f"trials failed in {', '.join(failed)}; rerun the same command to retry them")
        return 1
    return 0


def _print_verdicts(sections, path: str) -> None:
    """One line per claim (figure, study, verdict), then where the page is."""
    from analysis.report import VERDICT_WORDS

    for section in sections:
        verdict = "not run" if section.folder is None else VERDICT_WORDS[section.verdict.held][0]
        print(f"{section.claim.figure:12s} {section.claim.study:15s} {verdict}")
    print(f"report: {path}")


def cmd_report(args: argparse.Namespace) -> int:
    """``grok report``: the page, and one line per claim with its verdict."""
    import os

    from analysis.report import write_report

    if not os.path.isdir(args.storage):
        raise ConfigError(f"{args.storage}: no such folder of sweeps")
    try:
        path, sections = write_report(args.storage, args.out)
    except PermissionError as exc:
        raise ConfigError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    _print_verdicts(sections, path)
    return 0


def _add_critical_parser(commands) -> None:
    search = commands.add_parser(
        "critical-ratio",
        help="search the critical pruning ratio (the window of rates at which tickets "
             "generalise without weight decay) with Optuna on Ray Tune; continues by name")
    search.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a ticket setting (repeatable), e.g. train.steps=10000 "
                             "or base.optim.weight_decay=0.5; see `grok keys`")
    search.add_argument("--seeds", default=None,
                        help="seeds trained at every suggested rate (default 0,1,2; quick 0,1)")
    search.add_argument("--low", type=float, default=None,
                        help="lowest pruning rate searched (default 0.5; quick 0.3)")
    search.add_argument("--high", type=float, default=None,
                        help="highest pruning rate searched (default 0.95)")
    search.add_argument("--trials", type=int, default=None,
                        help="finished trials the study should hold (default 40; quick 6); a "
                             "rerun with more continues the study")
    search.add_argument("--sampler", default="threshold",
                        help="threshold (default: ours, puts trials where the edge is still "
                             "uncertain), tpe, random or grid (every --resolution step)")
    search.add_argument("--sampler-seed", dest="sampler_seed", type=int, default=0,
                        help="seed of the sampler's random draws")
    search.add_argument("--resolution", type=float, default=0.01,
                        help="resolution of the per-seed edges (default 0.01, as the paper)")
    search.add_argument("--quick", action="store_true",
                        help="the reduced version (p=23, two seeds, six trials: minutes)")
    search.add_argument("--name", default=None,
                        help="search name (default critical-ratio, or critical-ratio-quick)")
    search.add_argument("--storage", default=os.environ.get("GROK_STORAGE", "grok_sweeps"),
                        help="results root, a directory or URI (default $GROK_STORAGE or "
                             "./grok_sweeps); dense runs are shared under <storage>/artifacts")
    search.add_argument("--study-storage", default=None, metavar="URL",
                        help="SQLAlchemy URL of the Optuna study (default: SQLite file "
                             "<storage>/<name>/study.db)")
    search.add_argument("--address", default=None,
                        help="Ray cluster HOST:PORT (default $RAY_ADDRESS, else local Ray)")
    search.add_argument("--cpus-per-trial", type=float, default=1.0)
    search.add_argument("--gpus-per-trial", type=float, default=0.0)
    search.add_argument("--report-every", type=int, default=500,
                        help="steps between reports and checkpoints of a trial")
    search.add_argument("--restart", action="store_true",
                        help="start a new study (the old search is kept as NAME.restarted-K)")


def _log(message: str) -> None:
    """Progress and notes go to stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)


def _interrupted(stopped: Exception, path: str) -> int:
    """Exit code 130 after Ctrl-C, with where the partial results are."""
    _log(f"grok: {stopped}")
    _log(f"results so far: grok results {path}")
    return 130


def default_out(config: ExperimentConfig, seeds: Sequence[int],
                rates: Optional[Sequence[float]]) -> str:
    """Output directory named by what was run (never by time, so reruns land in one place)."""
    identity = json.dumps({"config": config.to_dict(), "seeds": list(seeds),
                           "rates": list(rates or [])}, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return os.path.join(DEFAULT_OUT_ROOT, f"{config.recipe}-{digest}")


def _resolve_device(name: str) -> str:
    choice("--device", name, ("auto", "cpu", "cuda"))
    if name == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available here")
    return name


def _table(frame, columns: Sequence[str]) -> str:
    shown = frame[[c for c in columns if c in frame.columns]].copy()
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


def _prepare_train(args: argparse.Namespace):
    """Every check a user's input can fail, before any work: config, seeds, rates, device,
    output directory and store."""
    from grok_core.store import ArtifactStore, Storage

    choice("recipe", args.recipe, RECIPES)
    config = ExperimentConfig().with_overrides([f"recipe={args.recipe}", *args.overrides])
    seeds = parse_seeds(args.seeds)
    rates = parse_rates(args.rates) if args.rates is not None else None
    if rates is not None and config.recipe == "dense":
        raise UsageError(DENSE_HAS_NO_RATE)
    device = _resolve_device(args.device)
    out = Storage(args.out or default_out(config, seeds, rates))
    store = ArtifactStore(args.store)
    out.check_writable()
    store.check_writable()
    return config, seeds, rates, device, out, store


def _write_outputs(out, config: ExperimentConfig, seeds, rates, result) -> None:
    """config.json, members / curves parquet (and the dense runs' for tickets), curves.png."""
    import torch

    from analysis.figures import accuracy_curves_png

    out.write_json({"config": config.to_dict(), "seeds": seeds, "rates": rates,
                    "dense_key": result.dense_key, "torch": torch.__version__}, "config.json")
    out.write_parquet(result.members, "members.parquet")
    out.write_parquet(result.curves, "curves.parquet")
    if result.base_members is not None:
        out.write_parquet(result.base_members, "base_members.parquet")
        out.write_parquet(result.base_curves, "base_curves.parquet")
    title = f"{config.recipe}: {config.task.op} mod {config.task.p}, {config.model.name}"
    out.write_bytes(accuracy_curves_png(result.curves, result.base_curves, title=title),
                    "curves.png")


def _print_result(result, as_json: bool) -> None:
    """The member table on stdout (tickets: their dense runs first), or JSON rows."""
    from grok_core.recipes import MEMBER_COLUMNS

    if as_json:
        print(json.dumps([{c: plain_value(row[c]) for c in MEMBER_COLUMNS if c in row}
                          for row in result.members.to_dict("records")]))
        return
    if result.base_members is not None:
        print("dense runs behind the tickets:")
        print(_table(result.base_members, MEMBER_COLUMNS))
        print(f"\n{result.recipe}:")
    print(_table(result.members, MEMBER_COLUMNS))


def cmd_train(args: argparse.Namespace) -> int:
    """``grok train``: validate everything, run, write outputs, print the member table."""
    config, seeds, rates, device, out, store = _prepare_train(args)
    log = _log
    from grok_core.recipes import run_experiment  # only now: bad input never waits for torch

    result = run_experiment(config, seeds, store, rates=rates, device=device,
                            progress=not args.no_progress, log=log)
    _write_outputs(out, config, seeds, rates, result)
    log(f"wrote members.parquet, curves.parquet and curves.png to {out.display()}")
    _print_result(result, args.json)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """``grok keys``: every settable key, its default and its help."""
    for key, default, text in key_help():
        print(f"{key:24s} {str(default):12s} {text}")
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    """``grok spaces``: one line per study."""
    from search_spaces import get_space, space_names

    for name in space_names():
        print(f"{name:14s} {get_space(name).DESCRIPTION}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``grok sweep``: validate, then run or resume the study on Ray Tune; print the table."""
    from sweeps.launch import (SweepInterrupted, SweepRequest, resolve_storage, run_sweep,
                               sweep_path)

    request = SweepRequest(
        space=args.space, overrides=args.overrides,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
        rates=parse_rates(args.rates) if args.rates is not None else None, quick=args.quick,
        name=args.name, storage=args.storage, address=args.address,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        restart=args.restart, max_cohort=args.max_cohort, report_every=args.report_every,
        tensorboard=args.tensorboard)
    log = _log
    name = request.sweep_name
    path = sweep_path(resolve_storage(request.storage), name)
    try:
        grid = run_sweep(request, log=log)
    except SweepInterrupted as stopped:
        return _interrupted(stopped, path)
    errors = [r for r in grid if r.error is not None]
    log(f"results: grok results {path}")
    loaded = _print_aggregate(path)
    from grok_core.store import Storage

    where = Storage(resolve_storage(request.storage))
    for png, file, what in ((_figure(loaded), "summary.png", "figure"),
                            (_paper_figure(loaded), "figure.png", "the paper's figure")):
        if png is not None:
            where.write_bytes(png, name, file)
            log(f"{what}: {where.display(name, file)}")
    if errors:
        log(f"{len(errors)} trial(s) failed; rerun the same command to retry them")
        return 1
    return 0


def _print_aggregate(path: str, csv: Optional[str] = None, parquet: Optional[str] = None
                     ) -> "SweepResults":
    """Print the ``grok results`` table of the sweep at ``path`` (and write it if asked);
    returns the loaded tables."""
    import analysis.results as results

    loaded = results.load(path)
    table = results.aggregate(loaded.members)
    done = int(loaded.trials["finished"].sum()) if not loaded.trials.empty else 0
    print(f"{done}/{len(loaded.trials)} trials finished, {len(loaded.members)} members")
    flagged = loaded.non_grokking()
    if not flagged.empty:
        print(f"warning: {len(flagged)} ticket member(s) took their mask from a dense run that "
              "had not generalised by the mask step (non-grokking tickets; column "
              "base_generalised=False, counted as non_grokking below)", file=sys.stderr)
    fmt = lambda v: f"{v:.4g}"  # noqa: E731
    if not loaded.base.empty:
        print("dense runs behind the tickets:")
        print(results.aggregate(loaded.base).to_string(index=False, na_rep="-", float_format=fmt))
        print("trials:")
    if not table.empty:
        print(table.to_string(index=False, na_rep="-", float_format=fmt))
    study = _study_of(loaded)
    if study is not None and hasattr(study, "table") and not loaded.members.empty:
        own = study.table(loaded)
        if own is not None and not own.empty:
            print(f"{loaded.study} table:")
            print(own.to_string(index=False, na_rep="-", float_format=fmt))
    if csv:
        table.to_csv(csv, index=False)
    if parquet:
        table.to_parquet(parquet, index=False)
    return loaded


def cmd_critical_ratio(args: argparse.Namespace) -> int:
    """``grok critical-ratio``: validate, run or continue the search, print the estimate."""
    from sweeps.critical_launch import CriticalRequest, run_critical, search_folder
    from sweeps.launch import SweepInterrupted, resolve_storage

    request = CriticalRequest(
        overrides=args.overrides,
        seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
        low=args.low, high=args.high, trials=args.trials, sampler=args.sampler,
        seed=args.sampler_seed, resolution=args.resolution, name=args.name,
        storage=args.storage, study_storage=args.study_storage, address=args.address,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        restart=args.restart, quick=args.quick, report_every=args.report_every)
    log = _log
    path = search_folder(resolve_storage(request.storage), request.search_name)
    try:
        search = run_critical(request, log=log)
    except SweepInterrupted as stopped:
        return _interrupted(stopped, path)
    print("\n".join(search.summary_lines()))
    log(f"results: grok results {path}  (members.parquet, estimate.json, summary.png there; "
        f"study {search.study_name} in {search.study_storage})")
    wanted = request.trials if request.trials is not None else request.defaults()["trials"]
    if search.trials < wanted:
        log(f"{wanted - search.trials} trial(s) failed; rerun the same command to replace them")
        return 1
    return 0


def _print_search(path: str, csv: Optional[str], parquet: Optional[str], figure: Optional[str]
                  ) -> int:
    """``grok results`` on a critical-ratio search: its estimate, per-seed edges and the
    member outcomes per rate."""
    from analysis.critical import load

    search = load(path)
    print("\n".join(search.summary_lines()))
    members = search.members
    if not members.empty:
        table = (members.groupby("pruning_rate")
                 .agg(members=("generalised", "size"), generalised=("generalised", "sum"),
                      final_test_acc=("final_test_acc", "mean"), t_gen=("t_gen", "median"))
                 .reset_index())
        print("member outcomes per rate:")
        print(table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}"))
    if csv:
        members.to_csv(csv, index=False)
    if parquet:
        members.to_parquet(parquet, index=False)
    if figure:
        if members.empty:
            raise UsageError(f"--figure: no finished trials in {path} to draw yet")
        from analysis.figures import critical_summary_png

        with open(figure, "wb") as handle:
            handle.write(critical_summary_png(search))
        print(f"figure: {figure}", file=sys.stderr)
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    """``grok results``: aggregated table over seeds per cell and pruning rate (a sweep), or
    the estimate and outcomes (a critical-ratio search)."""
    from analysis.critical import is_search

    for target in (args.figure, args.paper_figure):
        if target:
            from grok_core.store import Storage

            Storage(os.path.dirname(os.path.abspath(target))).check_writable()
    if is_search(args.path):
        return _print_search(args.path, args.csv, args.parquet, args.figure)
    loaded = _print_aggregate(args.path, args.csv, args.parquet)
    if args.figure:
        png = _figure(loaded)
        if png is None:
            raise UsageError(f"--figure: no finished trials in {args.path} to draw yet")
        with open(args.figure, "wb") as handle:
            handle.write(png)
        print(f"figure: {args.figure}", file=sys.stderr)
    if args.paper_figure:
        png = _paper_figure(loaded)
        if png is None:
            raise UsageError(f"--paper-figure: {args.path} is no finished sweep of a study that "
                             "draws one (norm_control, pai, edge_popup, structure)")
        with open(args.paper_figure, "wb") as handle:
            handle.write(png)
        print(f"the paper's figure: {args.paper_figure}", file=sys.stderr)
    return 0


def _study_of(loaded):
    """The study module (``search_spaces``) a loaded sweep ran, or None."""
    from search_spaces import get_space, space_names

    return get_space(loaded.study) if loaded.study in space_names() else None


def _paper_figure(loaded) -> Optional[bytes]:
    """The figure the paper draws for the sweep's study (PNG), or None where the study draws
    none or no trial has finished."""
    study = _study_of(loaded)
    if study is None or not hasattr(study, "figure") or loaded.members.empty:
        return None
    return study.figure(loaded)


def _figure(loaded) -> Optional[bytes]:
    """The sweep's summary PNG, or None while no trial has finished."""
    from analysis.figures import sweep_summary_png

    return None if loaded.members.empty else sweep_summary_png(loaded, title=loaded.title())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``grok`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        handler = {"train": cmd_train, "keys": cmd_keys, "spaces": cmd_spaces,
                   "sweep": cmd_sweep, "results": cmd_results, "report": cmd_report,
                   "reproduce": cmd_reproduce,
                   "critical-ratio": cmd_critical_ratio}[args.command]
        return handler(args)
    except BrokenPipeError:  # e.g. `grok keys | head`
        sys.stderr.close()
        return 0
    except ConfigError as exc:
        print(f"grok: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grok: interrupted; finished artifacts are kept, unfinished ones will be redone",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
