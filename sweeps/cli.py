"""The ``grok`` command: one module per command in ``sweeps.commands``.

    grok train RECIPE     one experiment without Ray        (sweeps/commands/train.py)
    grok keys             every settable key                (keys.py)
    grok studies          the studies grok sweep can run    (studies.py; alias: grok spaces)
    grok sweep STUDY      a study on Ray Tune               (sweep.py)
    grok critical-ratio   the Optuna critical-ratio search  (critical_ratio.py)
    grok results PATH     a sweep's table, a search's estimate (results.py)
    grok reproduce        every study, then the report      (reproduce.py)
    grok report STORAGE   the report page                   (report.py)

User errors (bad key, bad value, unwritable directory ...) print one line and exit with code 2
before any work starts. Tables go to stdout; progress and warnings go through the ``grok``
logger, which ``main`` points at stderr.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator, Optional, Sequence

from grok_core.config import ConfigError
from grok_core.errors import StorageUnavailable

from .commands import ALIASES, COMMANDS, command_module
from .commands._common import Parser


class _StderrHandler(logging.Handler):
    """Writes each record to whatever ``sys.stderr`` is at the time (so a test capturing
    stderr, or a caller redirecting it, sees the messages)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


@contextlib.contextmanager
def cli_logging() -> Iterator[None]:
    """The CLI's handler on the ``grok`` logger for one command: INFO and up, message only, to
    stderr; the logger is as it was afterwards (a caller that embeds ``main`` keeps its own)."""
    logger = logging.getLogger("grok")
    handler = _StderrHandler()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # once on stderr is enough
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def build_parser(command: Optional[str] = None) -> Parser:
    """The parser of ``grok``; with ``command``, that command's own options added (its module
    is imported only then)."""
    parser = Parser(prog="grok", description="Grokking-ticket experiments.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (_, text) in COMMANDS.items():
        aliases = [a for a, target in ALIASES.items() if target == name]
        sub = commands.add_parser(name, help=text, aliases=aliases)
        if command is not None and ALIASES.get(command, command) == name:
            command_module(name).add_arguments(sub)
    return parser


def _command_word(argv: Sequence[str]) -> Optional[str]:
    """The first argument naming a command, if any."""
    known = set(COMMANDS) | set(ALIASES)
    return next((a for a in argv if a in known), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``grok`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with cli_logging():
        return _run(argv)


def _run(argv: list[str]) -> int:
    try:
        args = build_parser(_command_word(argv)).parse_args(argv)
        return command_module(args.command).run(args)
    except BrokenPipeError:  # e.g. `grok keys | head`: the reader left; stop quietly
        # what is still buffered would fail again at exit: send it nowhere (Python's docs)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ConfigError, StorageUnavailable) as exc:  # bad input: 2; storage went away: 1
        print(f"grok: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        print("grok: interrupted; finished artifacts are kept, unfinished ones will be redone",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
