"""``grok critical-ratio``: validate, run or continue the Optuna search of the critical
pruning ratio on Ray Tune, print the estimate."""
from __future__ import annotations

import argparse
import logging

from grok_core.layout import CRITICAL_RATIO_SEARCH, ESTIMATE_FILE, MEMBERS_FILE, SUMMARY_FIGURE_FILE

from ..critical_ratio_search import CriticalRequest, run_critical, search_folder
from ..grid_sweep import resolve_storage
from ..tune_runner import SweepInterrupted
from ._common import (add_cluster, add_overrides, add_report_every, add_storage,
                      add_study_storage, interrupted,
                      optional_seeds)

log = logging.getLogger("grok")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``grok critical-ratio``."""
    add_overrides(parser, "override a ticket setting (repeatable), e.g. train.steps=10000 or "
                          "base.optim.weight_decay=0.5; see `grok keys`")
    parser.add_argument("--seeds", default=None,
                        help="seeds trained at every suggested rate (default 0,1,2; quick 0,1)")
    parser.add_argument("--low", type=float, default=None,
                        help="lowest pruning rate searched (default 0.5; quick 0.3)")
    parser.add_argument("--high", type=float, default=None,
                        help="highest pruning rate searched (default 0.95)")
    parser.add_argument("--trials", type=int, default=None,
                        help="finished trials the study should hold (default 40; quick 4); a "
                             "rerun with more continues the study")
    parser.add_argument("--sampler", default="threshold",
                        help="threshold (default: ours, puts trials where the edge is still "
                             "uncertain), tpe, random or grid (every --resolution step)")
    parser.add_argument("--sampler-seed", dest="sampler_seed", type=int, default=0,
                        help="seed of the sampler's random draws")
    parser.add_argument("--resolution", type=float, default=0.01,
                        help="resolution of the per-seed edges (default 0.01, as the paper)")
    parser.add_argument("--quick", action="store_true",
                        help="the quick size (two seeds, four trials of 4000 steps: minutes)")
    parser.add_argument("--name", default=None,
                        help=f"search name (default {CRITICAL_RATIO_SEARCH}, or "
                             f"{CRITICAL_RATIO_SEARCH}-quick)")
    add_storage(parser)
    add_study_storage(parser)
    add_cluster(parser)
    add_report_every(parser)
    parser.add_argument("--restart", action="store_true",
                        help="start a new study (the old search is kept as NAME.restarted-K)")


def run(args: argparse.Namespace) -> int:
    """Run or continue the search; exit 1 if trials failed (a rerun replaces them)."""
    request = CriticalRequest(
        overrides=args.overrides, seeds=optional_seeds(args.seeds), low=args.low,
        high=args.high, trials=args.trials, sampler=args.sampler, seed=args.sampler_seed,
        resolution=args.resolution, name=args.name, storage=args.storage,
        study_storage=args.study_storage, address=args.address,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        restart=args.restart, quick=args.quick, report_every=args.report_every)
    path = search_folder(resolve_storage(request.storage), request.search_name)
    try:
        search = run_critical(request)
    except SweepInterrupted as stopped:
        return interrupted(stopped, path)
    print("\n".join(search.summary_lines()))
    log.info(f"results: grok results {path}  ({MEMBERS_FILE}, {ESTIMATE_FILE}, "
             f"{SUMMARY_FIGURE_FILE} there; study {search.study_name} in {search.study_storage})")
    wanted = request.trials if request.trials is not None else request.defaults()["trials"]
    if search.trials < wanted:
        log.info(f"{wanted - search.trials} trial(s) failed; rerun the same command to replace "
                 "them")
        return 1
    return 0
