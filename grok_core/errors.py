"""The user's errors: ``ConfigError`` and the checks that raise it.

Every bad input (a key, a value, a data folder) fails with a :class:`ConfigError` whose message
is one line for the user, naming the bad key and what it takes. This module imports nothing of
the project, so every module may raise these errors: the configs (``grok_core.config``, which
re-exports them), the data readers (``grok_core.idx``, ``grok_core.text``) the configs call to
check a data folder, and the engine.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class ConfigError(ValueError):
    """A user-caused configuration error; its message is one line meant for the user."""


class StorageUnavailable(Exception):
    """The storage (an object store, a network folder) stopped answering while work ran. What
    it already holds is kept whole (every write is atomic); rerunning the command resumes."""


class CorruptArtifact(ConfigError):
    """A stored file of a dense run that fails its checksum or cannot be parsed (cut short, a
    flipped byte). The engine trains the run again (``grok_core.recipes.repairing``); readers
    that cannot (the analysis) stop with this one line."""

    def __init__(self, file: str, key: str, seed: int, why: str) -> None:
        super().__init__(f"corrupt artifact {file} of dense run {key} seed {seed}: {why}")
        self.file, self.key, self.seed = file, key, seed


def closest(name: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the option closest to ``name``, or '' when none is close."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def choice(key: str, value: str, options: Iterable[str]) -> None:
    """Raise ConfigError unless ``value`` is one of ``options``, suggesting the closest."""
    options = list(options)
    if value not in options:
        raise ConfigError(
            f"{key}: unknown value {value!r}{closest(str(value), options)}; "
            f"choose one of {', '.join(options)}"
        )


def check_pruning_rate(rate: float, key: str = "pruning rate") -> None:
    """Raise ConfigError unless 0 <= rate < 1."""
    if not (isinstance(rate, (int, float)) and 0.0 <= rate < 1.0):
        raise ConfigError(f"{key}: must be in [0, 1), got {rate}")
