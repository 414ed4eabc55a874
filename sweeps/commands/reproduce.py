"""``grok reproduce``: each study's sweep in turn (finished ones skipped, the others resumed),
then the report."""
from __future__ import annotations

import argparse
import logging

from grok_core.layout import CRITICAL_RATIO_SEARCH

from ..reproduce import ReproduceRequest, reproduce
from ..tune_runner import SweepInterrupted
from ._common import (add_cluster, add_overrides, add_storage, add_study_storage,
                      optional_seeds)
from .report import add_report_out, print_verdicts

log = logging.getLogger("grok")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``grok reproduce``."""
    parser.add_argument("--only", default=None,
                        help="comma-separated studies of `grok studies`, or "
                             f"{CRITICAL_RATIO_SEARCH} (the Optuna search of grok "
                             "critical-ratio); default: all but mnist, which needs --set "
                             "task.data_dir")
    parser.add_argument("--quick", action="store_true", help="the quick version of each study")
    parser.add_argument("--seeds", default=None,
                        help="model seeds of every study, e.g. 5,6 (default: each study's own; "
                             "another seed set is another sweep: give it its own --storage)")
    add_storage(parser, "where the sweeps go (a folder or URI), and the report unless --out")
    add_study_storage(parser)
    add_cluster(parser)
    add_overrides(parser, "a setting applied to every study run")
    add_report_out(parser)


def run(args: argparse.Namespace) -> int:
    """Run the studies, write the report, print the verdicts."""
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    request = ReproduceRequest(only=only, quick=args.quick, seeds=optional_seeds(args.seeds),
                               storage=args.storage,
                               address=args.address, cpus_per_trial=args.cpus_per_trial,
                               gpus_per_trial=args.gpus_per_trial, overrides=args.overrides,
                               out=args.out, study_storage=args.study_storage)
    try:
        path, sections, failed = reproduce(request)
    except SweepInterrupted as stopped:
        log.info(f"grok: {stopped}; rerun the same command to continue")
        return 130
    print_verdicts(sections, path)
    if failed:
        log.info(f"trials failed in {', '.join(failed)}; rerun the same command to retry them")
        return 1
    return 0
