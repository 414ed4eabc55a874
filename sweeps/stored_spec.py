"""What a sweep or a search was started with, and the refusal of a rerun that changes it.

A resumed sweep keeps the trials it was started with and a search's outcomes are only
comparable under one set of settings, so new seeds, rates or settings would silently not apply:
such a rerun is refused with the settings that differ.
"""
from __future__ import annotations

import json
from typing import Optional, Sequence

from grok_core.config import ConfigError, changed_settings
from grok_core.store import Storage


def check_same_spec(folder: Storage, spec_file: str, wanted: dict, what: str, *,
                    keys: Optional[Sequence[str]] = None, prefix: str = "") -> None:
    """ConfigError if ``folder`` holds ``spec_file`` with another spec than ``wanted`` (only
    ``keys`` compared, if given); ``what`` names it in the message ("sweep", "search")."""
    if not folder.exists(spec_file):
        return
    try:
        stored = folder.read_json(spec_file)
    except ValueError:
        return  # damaged: the run itself decides whether anything can resume
    wanted = json.loads(json.dumps(wanted))  # tuples -> lists, as stored
    if keys is not None:
        stored = {k: stored.get(k) for k in keys}
        wanted = {k: wanted.get(k) for k in keys}
    if stored == wanted:
        return
    changed = sorted({k.removeprefix(prefix).removesuffix(".grid_search")
                      for k in changed_settings(stored, wanted)})
    verb = "continue" if what == "search" else "resume"
    raise ConfigError(f"{what} {folder.display()} was started with other settings (differs in "
                      f"{', '.join(changed)}): rerun it as it was to {verb} it, or use --name "
                      f"NEW for a new {what}, or --restart to start it over")
