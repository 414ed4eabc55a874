"""``grok studies`` (also ``grok spaces``): the studies ``grok sweep`` can run."""
from __future__ import annotations

import argparse

from search_spaces import get_study, study_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """One line per study."""
    for name in study_names():
        print(f"{name:14s} {get_study(name).DESCRIPTION}")
    return 0
