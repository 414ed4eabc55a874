"""``grok report STORAGE``: the reproduction page, and one line per claim with its verdict."""
from __future__ import annotations

import argparse

from analysis.report import VERDICT_WORDS, write_report
from grok_core.config import ConfigError
from grok_core.store import Storage, without_query


def add_report_out(parser: argparse.ArgumentParser) -> None:
    """``--out``: the local folder of the page (``analysis.report.report_folder``)."""
    parser.add_argument("--out", default=None, help="local folder for index.html and its figures "
                        "(default STORAGE/report, or ./grok_report when STORAGE is a URI)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``grok report``."""
    parser.add_argument("storage", help="the folder or URI the sweeps were written to "
                                        "(--storage)")
    add_report_out(parser)


def print_verdicts(sections, path: str) -> None:
    """One line per claim (figure, study, verdict), then where the page is."""
    for section in sections:
        verdict = "not run" if section.folder is None else VERDICT_WORDS[section.verdict.held][0]
        print(f"{section.claim.figure:12s} {section.claim.study:15s} {verdict}")
    print(f"report: {path}")


def run(args: argparse.Namespace) -> int:
    """Write the page from the sweeps finished under ``args.storage``."""
    if not Storage(args.storage).is_dir():
        raise ConfigError(f"{without_query(args.storage)}: no such folder of sweeps")
    try:
        path, sections = write_report(args.storage, args.out)
    except PermissionError as exc:
        raise ConfigError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    print_verdicts(sections, path)
    return 0
