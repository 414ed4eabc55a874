"""``grok keys``: every settable key, its default and its help."""
from __future__ import annotations

import argparse

from grok_core.config import key_help


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """One line per key."""
    for key, default, text in key_help():
        print(f"{key:24s} {str(default):12s} {text}")
    return 0
