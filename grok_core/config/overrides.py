"""Dotted keys: ``--set key=value`` strings, flat and nested settings, and the key list.

A setting is named by a dotted key, ``section.field`` (``optim.lr``), or ``base.section.field``
for the dense run behind a ticket, or ``recipe``. This module turns strings into typed values
(``coerce``: a field's annotation decides), splits ``key=value`` (``parse_override``),
flattens and nests settings dicts, and lists every key with its default and help
(``all_keys``, ``key_help``: ``grok keys``). Unknown keys get the closest known key suggested.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Mapping, Union

from ..errors import ConfigError, choice, closest
from .names import RECIPES
from .sections import BASE_SECTIONS, SECTIONS


def plain_value(value: Any) -> Any:
    """A JSON-able scalar: NaN as None, numpy / torch scalars as Python ones."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def changed_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two nested settings dicts (sorted)."""
    old_flat, new_flat = flatten_settings(old), flatten_settings(new)
    return sorted(k for k in old_flat.keys() | new_flat.keys()
                  if old_flat.get(k) != new_flat.get(k))


def field_types(cls: type) -> dict[str, Any]:
    """{field name: annotation} of a section's dataclass (resolved from the string form)."""
    return typing.get_type_hints(cls)


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """Convert a CLI string (or a JSON value) to the field's declared type."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in options:
                return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(key, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        names = " or ".join("None" if o is type(None) else o.__name__ for o in options)
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")


def build_section(section: str, values: Mapping[str, Any]) -> Any:
    """The ``section`` dataclass from {field: value}, each value coerced to its field's type;
    ConfigError for an unknown field (closest key suggested) or a bad value."""
    cls = SECTIONS[section]
    hints = field_types(cls)
    kwargs = {}
    for name, value in values.items():
        if name not in hints:
            dotted = f"{section}.{name}"
            raise ConfigError(f"unknown key {dotted}{closest(dotted, all_keys())}")
        kwargs[name] = coerce(f"{section}.{name}", value, hints[name])
    return cls(**kwargs)


def all_keys() -> list[str]:
    """Every dotted key a user can set, e.g. 'optim.lr'."""
    keys = ["recipe"]
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    keys += [f"base.{k}" for k in keys if k.split(".")[0] in BASE_SECTIONS]
    return keys


def key_help() -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every settable key."""
    rows = [("recipe", "dense", f"experiment recipe: {', '.join(RECIPES)}")]
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((f"{section}.{f.name}", f.default, f.metadata.get("help", "")))
    rows.append(("base.optim.*", "(ticket's)",
                 "optimiser of the dense run behind a ticket (default: the ticket's optim.*)"))
    rows.append(("base.train.*", "(defaults)",
                 "training of the dense run behind a ticket (default: the train.* defaults, "
                 "never the ticket's own budget, cadence or early stop)"))
    return rows


def parse_override(text: str) -> tuple[str, str]:
    """Split 'key=value' into its parts; ConfigError on malformed input."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or "." not in key and key != "recipe":
        raise ConfigError(f"malformed override {text!r}: expected key=value, e.g. optim.lr=0.01")
    return key, value.strip()


def nest_settings(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'optim.lr': 1} -> {'optim': {'lr': 1}} (the inverse of ``flatten_settings``)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"conflicting override for {key}")
        node[parts[-1]] = value
    return nested


def flatten_settings(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optim': {'lr': 1}} -> {'optim.lr': 1} (any depth)."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def base_field_type(key: str) -> Any:
    """Type of the dense-run setting 'section.name' (given without 'base.'); ConfigError if a
    ticket's dense run may not differ there or no such field exists."""
    section, _, name = key.partition(".")
    if section not in BASE_SECTIONS:
        raise ConfigError(
            f"base.{key}: a ticket's dense run may differ only in "
            f"{' / '.join(BASE_SECTIONS)} settings (same task and model)")
    hints = field_types(SECTIONS[section])
    if name not in hints:
        raise ConfigError(f"unknown key base.{key}{closest('base.' + key, all_keys())}")
    return hints[name]


def typed_override(text: str) -> tuple[str, Any]:
    """('section.field', value converted to the field's type) for a 'key=value' string;
    ConfigError for an unknown key (closest suggested) or a value of the wrong type."""
    key, value = parse_override(text)
    parts = key.split(".")
    if parts[0] == "base":
        return key, coerce(key, value, base_field_type(key.partition(".")[2]))
    if len(parts) == 2 and parts[0] in SECTIONS:
        section, name = parts
    elif key == "recipe":
        choice("recipe", value, RECIPES)
        return key, value
    else:
        raise ConfigError(f"unknown key {key}{closest(key, all_keys())}")
    hints = field_types(SECTIONS[section])
    if name not in hints:
        raise ConfigError(f"unknown key {key}{closest(key, all_keys())}")
    return key, coerce(key, value, hints[name])
