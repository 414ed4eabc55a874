"""Walking a study's param space: its grid axes, its cells, the recipes its trials run.

Plain dicts only (no Ray, no torch): the study modules use it to build their quick versions,
and ``sweeps.space`` to validate and split a space into trials.
"""
from __future__ import annotations

import copy
import itertools
from typing import Any

from grok_core.trial_config import VARIANT_KEY


def is_grid(value: Any) -> bool:
    """Whether ``value`` is a Tune grid (``{"grid_search": [...]}``)."""
    return isinstance(value, dict) and set(value) == {"grid_search"}


def set_path(space: dict, dotted: str, value: Any) -> None:
    """Set the dotted key of a nested space (a grid or a value in the way is replaced)."""
    node = space
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict) or is_grid(child):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _grid_axes(space: Any, prefix: str = "") -> list[tuple[str, list]]:
    if is_grid(space):
        return [(prefix, list(space["grid_search"]))]
    if isinstance(space, dict):
        return [axis for key, value in space.items()
                for axis in _grid_axes(value, f"{prefix}.{key}" if prefix else key)]
    return []


def grid_axes(space: dict) -> list[tuple[str, list]]:
    """(dotted path, values) of every grid_search axis of a space."""
    return _grid_axes(space)


def expand_cells(space: dict) -> list[dict]:
    """Every trial config of a grid space (the cartesian product of its grid axes)."""
    axes = grid_axes(space)
    cells = []
    for values in itertools.product(*[v for _, v in axes]) if axes else [()]:
        cell = copy.deepcopy(space)
        for (path, _), value in zip(axes, values):
            set_path(cell, path, value)
        cells.append(cell)
    return cells


def space_recipes(space: dict) -> set[str]:
    """The recipes a space's trials run: its ``recipe``, or its variants' where they set one."""
    top = space.get("recipe", "dense")
    variants = space.get(VARIANT_KEY)
    values = (variants["grid_search"] if is_grid(variants)
              else [variants] if isinstance(variants, (dict, list)) else [])
    # a value may be a variant group (a list of variants: sweeps.space.group_variants)
    values = [v for value in values for v in (value if isinstance(value, list) else [value])]
    recipes = {v.get("recipe", top) if isinstance(v, dict) else top for v in values}
    return {r if isinstance(r, str) else "<grid>" for r in (recipes or {top})}
