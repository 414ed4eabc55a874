"""What several commands share: argument parsing helpers and option groups."""
from __future__ import annotations

import argparse
import logging
import os

from grok_core.config import ConfigError, check_pruning_rate
from grok_core.layout import DEFAULT_STORAGE

log = logging.getLogger("grok")


class UsageError(ConfigError):
    """Bad command-line usage."""


class Parser(argparse.ArgumentParser):
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


def optional_seeds(text):
    """``parse_seeds`` of a flag that may be absent (None: the study's own)."""
    return parse_seeds(text) if text is not None else None


def optional_rates(text):
    """``parse_rates`` of a flag that may be absent (None: the study's own)."""
    return parse_rates(text) if text is not None else None


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help=help)


def add_storage(parser: argparse.ArgumentParser, help: str = "") -> None:
    """``--storage``: the results root every sweep, search and grok train share."""
    parser.add_argument("--storage", default=os.environ.get("GROK_STORAGE", DEFAULT_STORAGE),
                        help=help or "results root, a directory or URI (default $GROK_STORAGE "
                                     f"or ./{DEFAULT_STORAGE}); dense runs are shared under "
                                     "<storage>/artifacts")


def add_study_storage(parser: argparse.ArgumentParser) -> None:
    """``--study-storage``: where the critical-ratio search keeps its Optuna study."""
    parser.add_argument("--study-storage", default=None, metavar="URL",
                        help="SQLAlchemy URL of the critical-ratio search's Optuna study, e.g. "
                             "postgresql+psycopg2://USER@HOST/DB (default: SQLite file "
                             "<storage>/<name>/study.db; required when --storage is a URI)")


def add_cluster(parser: argparse.ArgumentParser, gpu_help: str = "") -> None:
    """``--address``, ``--cpus-per-trial``, ``--gpus-per-trial``."""
    parser.add_argument("--address", default=None,
                        help="Ray cluster HOST:PORT (default $RAY_ADDRESS, else local Ray)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help=gpu_help or None)


def add_report_every(parser: argparse.ArgumentParser) -> None:
    """``--report-every``: steps between a trial's reports."""
    parser.add_argument("--report-every", type=int, default=500,
                        help="steps between reports and checkpoints of a trial")


def interrupted(stopped: Exception, path: str) -> int:
    """Exit code 130 after Ctrl-C, with where the partial results are."""
    log.info(f"grok: {stopped}")
    log.info(f"results so far: grok results {path}")
    return 130
