"""``grok results PATH``: the aggregated table of a sweep (over seeds per cell and pruning
rate), or the estimate and member outcomes of a critical-ratio search; no Ray needed."""
from __future__ import annotations

import argparse
import logging
import os
from typing import Optional

import analysis.results as results
from analysis.critical_ratio import is_search
from analysis.critical_ratio import load as load_search
from analysis.figures import critical_summary_png, sweep_summary_png
from analysis.study_figures import study_figure, study_table
from grok_core.store import Storage

from ._common import UsageError

log = logging.getLogger("grok")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``grok results``."""
    parser.add_argument("path", help="<storage>/<sweep or search name>, a directory or URI")
    parser.add_argument("--csv", default=None, help="also write the table as CSV here")
    parser.add_argument("--parquet", default=None, help="also write the table as parquet here")
    parser.add_argument("--figure", default=None, metavar="PNG",
                        help="also draw the sweep here: test accuracy curves, and t_mem / t_gen "
                             "per pruning rate and cell")
    parser.add_argument("--paper-figure", default=None, metavar="PNG",
                        help="also draw the figure the paper draws for the sweep's study "
                             "(norm_control, pai, edge_popup, structure)")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def print_sweep(path: str, csv: Optional[str] = None, parquet: Optional[str] = None
                ) -> "results.SweepResults":
    """Print the table of the sweep at ``path`` (and write it if asked); returns the loaded
    tables."""
    loaded = results.load(path)
    table = results.aggregate(loaded.members)
    done, trials = loaded.tune_trials()
    print(f"{done}/{trials} trials finished, {len(loaded.members)} members")
    flagged = loaded.non_grokking()
    if not flagged.empty:
        log.warning(f"warning: {len(flagged)} ticket member(s) took their mask from a dense run "
                    "that had not generalised by the mask step (non-grokking tickets; column "
                    "base_generalised=False, counted as non_grokking below)")
    starts = loaded.non_memorising_starts()
    if not starts.empty:
        seeds = ", ".join(map(str, sorted(starts["seed"].unique())))
        log.warning(f"warning: theta_mem of seed(s) {seeds} is no memorising start (test "
                    "accuracy already high, or training split not fitted, at the start step; "
                    "column start_memorising=False)")
    if not loaded.base.empty:
        print("dense runs behind the tickets:")
        print(results.aggregate(loaded.base).to_string(index=False, na_rep="-",
                                                       float_format=_fmt))
        print("trials:")
    if not table.empty:
        print(table.to_string(index=False, na_rep="-", float_format=_fmt))
    own = study_table(loaded) if not loaded.members.empty else None
    if own is not None and not own.empty:
        print(f"{loaded.study} table:")
        print(own.to_string(index=False, na_rep="-", float_format=_fmt))
    if csv:
        table.to_csv(csv, index=False)
    if parquet:
        table.to_parquet(parquet, index=False)
    return loaded


def print_search(path: str, csv: Optional[str], parquet: Optional[str],
                 figure: Optional[str]) -> int:
    """A critical-ratio search: its estimate, per-seed edges and member outcomes per rate."""
    search = load_search(path)
    print("\n".join(search.summary_lines()))
    members = search.members
    if not members.empty:
        table = (members.groupby("pruning_rate")
                 .agg(members=("generalised", "size"), generalised=("generalised", "sum"),
                      final_test_acc=("final_test_acc", "mean"), t_gen=("t_gen", "median"))
                 .reset_index())
        print("member outcomes per rate:")
        print(table.to_string(index=False, na_rep="-", float_format=_fmt))
    if csv:
        members.to_csv(csv, index=False)
    if parquet:
        members.to_parquet(parquet, index=False)
    if figure:
        if members.empty:
            raise UsageError(f"--figure: no finished trials in {path} to draw yet")
        _write_file(figure, critical_summary_png(search), "figure")
    return 0


def paper_figure(loaded) -> Optional[bytes]:
    """The figure the paper draws for the sweep's study (PNG), or None where the study draws
    none or no trial has finished."""
    return None if loaded.members.empty else study_figure(loaded)


def summary_figure(loaded) -> Optional[bytes]:
    """The sweep's summary PNG, or None while no trial has finished."""
    return None if loaded.members.empty else sweep_summary_png(loaded, title=loaded.title())


def _write_file(target: str, png: bytes, what: str) -> None:
    with open(target, "wb") as handle:
        handle.write(png)
    log.info(f"{what}: {target}")


def run(args: argparse.Namespace) -> int:
    """The table (and files) of a sweep or a search."""
    for target in (args.figure, args.paper_figure):
        if target:
            Storage(os.path.dirname(os.path.abspath(target))).check_writable()
    if is_search(args.path):
        return print_search(args.path, args.csv, args.parquet, args.figure)
    loaded = print_sweep(args.path, args.csv, args.parquet)
    if args.figure:
        png = summary_figure(loaded)
        if png is None:
            raise UsageError(f"--figure: no finished trials in {args.path} to draw yet")
        _write_file(args.figure, png, "figure")
    if args.paper_figure:
        png = paper_figure(loaded)
        if png is None:
            raise UsageError(f"--paper-figure: {args.path} is no finished sweep of a study that "
                             "draws one (norm_control, pai, edge_popup, structure)")
        _write_file(args.paper_figure, png, "the paper's figure")
    return 0
