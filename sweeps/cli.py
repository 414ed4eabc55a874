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

import logging
import sys
from typing import Optional, Sequence

from grok_core.config import ConfigError

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


def setup_logging() -> None:
    """The CLI's handler on the ``grok`` logger: INFO and up, message only, to stderr."""
    logger = logging.getLogger("grok")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


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
    setup_logging()
    try:
        args = build_parser(_command_word(argv)).parse_args(argv)
        return command_module(args.command).run(args)
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
