"""``grok sweep STUDY``: validate, then run or resume the study on Ray Tune; print its table
and draw its figures."""
from __future__ import annotations

import argparse
import logging

from grok_core.layout import PAPER_FIGURE_FILE, SUMMARY_FIGURE_FILE
from grok_core.store import Storage

from ..grid_sweep import SweepRequest, resolve_storage, run_sweep, sweep_path
from ..tune_runner import SweepInterrupted
from ._common import (add_cluster, add_overrides, add_report_every, add_storage, interrupted,
                      optional_rates, optional_seeds)
from .results import paper_figure, print_sweep, summary_figure

log = logging.getLogger("grok")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``grok sweep``."""
    parser.add_argument("study", help="a study; see `grok studies`")
    add_overrides(parser, "override a setting in every trial (repeatable)")
    parser.add_argument("--seeds", default=None, help="model seeds of every cell, e.g. 0-4")
    parser.add_argument("--rates", default=None,
                        help="pruning rates of every ticket cell, e.g. 0.5,0.6 "
                             "(default: the study's)")
    parser.add_argument("--quick", action="store_true",
                        help="the study's reduced version (minutes on a laptop)")
    parser.add_argument("--name", default=None, help="sweep name (default: the study's name)")
    add_storage(parser)
    add_cluster(parser, "fractions allowed: several small trials share a GPU")
    parser.add_argument("--max-cohort", type=int, default=64,
                        help="most members (seeds x rates) stacked in one trial")
    add_report_every(parser)
    parser.add_argument("--restart", action="store_true", help="start over instead of resuming")
    parser.add_argument("--tensorboard", action="store_true", help="also log TensorBoard files")


def run(args: argparse.Namespace) -> int:
    """Run the sweep, print ``grok results``' table, draw summary.png (and figure.png)."""
    request = SweepRequest(
        study=args.study, overrides=args.overrides, seeds=optional_seeds(args.seeds),
        rates=optional_rates(args.rates), quick=args.quick, name=args.name,
        storage=args.storage, address=args.address, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, restart=args.restart, max_cohort=args.max_cohort,
        report_every=args.report_every, tensorboard=args.tensorboard)
    name = request.sweep_name
    path = sweep_path(resolve_storage(request.storage), name)
    try:
        grid = run_sweep(request)
    except SweepInterrupted as stopped:
        return interrupted(stopped, path)
    errors = [r for r in grid if r.error is not None]
    log.info(f"results: grok results {path}")
    loaded = print_sweep(path)
    where = Storage(resolve_storage(request.storage))
    for png, file, what in ((summary_figure(loaded), SUMMARY_FIGURE_FILE, "figure"),
                            (paper_figure(loaded), PAPER_FIGURE_FILE, "the paper's figure")):
        if png is not None:
            where.write_bytes(png, name, file)
            log.info(f"{what}: {where.display(name, file)}")
    if errors:
        log.info(f"{len(errors)} trial(s) failed; rerun the same command to retry them")
        return 1
    return 0
