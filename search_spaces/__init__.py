"""Every study of the paper as a Ray Tune search space, one module per study.

A study module defines ``DESCRIPTION`` (one line: what varies, which figure) and
``param_space(quick: bool = False) -> dict``: a trial config in the nested layout of
``grok_core.config.ExperimentConfig`` (``recipe``, ``task``, ``model``, ``optim``, ``train``,
``prune``, ``base``) plus ``seeds`` and ``rates`` (the cohort trained inside one trial), where
any setting may be a ``tune.grid_search``. ``quick=True`` gives a reduced version that finishes in
a few minutes on a laptop. To add a study, add a module here: it is found by name (its own
figure and table, if the paper draws one, go in ``analysis.study_figures``).
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from grok_core.config import ConfigError, choice

from ._grid import expand_cells, grid_axes, is_grid, set_path, space_recipes


def study_names() -> list[str]:
    """Names of the study modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_study(name: str) -> ModuleType:
    """The study module called ``name``; ConfigError (closest name suggested) if none is."""
    choice("study", name, study_names())
    module = importlib.import_module(f"{__name__}.{name}")
    if not hasattr(module, "param_space") or not hasattr(module, "DESCRIPTION"):
        raise ConfigError(f"study {name!r}: module lacks param_space() or DESCRIPTION")
    return module


__all__ = ["expand_cells", "get_study", "grid_axes", "is_grid", "set_path", "space_recipes",
           "study_names"]
