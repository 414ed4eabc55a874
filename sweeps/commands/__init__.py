"""The ``grok`` commands, one module each; ``COMMANDS`` is their registry.

Each module defines ``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). The CLI
(``sweeps.cli``) imports only the module of the command it runs, so a rejected ``grok train``
never waits for Ray, and ``grok keys`` never for pandas.
"""
from __future__ import annotations

import importlib
from types import ModuleType

# command -> (module under sweeps.commands, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "run one experiment (a cohort of seeds x pruning rates) without Ray"),
    "keys": ("keys", "list every settable key with its default and help"),
    "studies": ("studies", "list the studies grok sweep can run"),
    "sweep": ("sweep", "run a study as a Ray Tune sweep (resumes by name)"),
    "critical-ratio": ("critical_ratio", "search the critical pruning ratio (the window of rates "
                       "at which tickets generalise without weight decay) with Optuna on Ray "
                       "Tune; continues by name"),
    "results": ("results", "aggregated table of a sweep, or the estimate of a critical-ratio "
                "search (no Ray needed)"),
    "reproduce": ("reproduce", "run every study (skipping finished ones, resuming the others), "
                  "then write the report"),
    "report": ("report", "write the reproduction report (one HTML page: every claim, its "
               "figure, numbers and verdict) from the sweeps finished under a storage"),
}
# older spellings still accepted
ALIASES = {"spaces": "studies"}


def command_module(name: str) -> ModuleType:
    """The module of the command ``name`` (a registered name or alias)."""
    module, _ = COMMANDS[ALIASES.get(name, name)]
    return importlib.import_module(f"{__name__}.{module}")
