"""Shared pieces of the study modules: the quick (laptop-sized) settings."""
from __future__ import annotations

# A small modular task (p=23) whose dense runs memorise by step ~80 and grok by step ~1500.
QUICK = {
    "task": {"p": 23, "pairs": "all", "train_fraction": 0.5},
    "model": {"d_emb": 64, "d_hidden": 32},
    "optim": {"lr": 0.003},
    "train": {"steps": 3000, "checkpoint_every": 500},
}


def _is_group(value: object) -> bool:
    """A nested settings group (a Tune grid {'grid_search': [...]} is a value, not a group)."""
    return isinstance(value, dict) and "grid_search" not in value


def merged(base: dict, *extras: dict) -> dict:
    """Nested merge of settings dicts, later ones winning (no input is changed)."""
    out = dict(base)
    for extra in extras:
        for key, value in extra.items():
            if _is_group(value) and _is_group(out.get(key)):
                out[key] = merged(out[key], value)
            else:
                out[key] = value
    return out
