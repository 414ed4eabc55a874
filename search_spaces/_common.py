"""Shared pieces of the study modules: early stop of tickets, and the quick (laptop-sized)
settings."""
from __future__ import annotations

from ray import tune

from ._grid import space_recipes

# A ticket that has held test accuracy >= 0.95 for this many steps stops training (each member
# on its own; the others go on). The ticket figures need a curve up to t_gen and a plateau
# after it, not tens of thousands of steps at 1.0. Dense runs never stop early: a mask comes
# from their final step.
TICKET_STOP = {"train": {"stop_margin": 2000}}

# A small modular task (p=23) whose dense runs memorise by step ~80 and grok by step ~1500.
QUICK_TRAIN = {"steps": 3000, "checkpoint_every": 500}
QUICK = {
    "task": {"p": 23, "pairs": "all", "train_fraction": 0.5},
    "model": {"d_emb": 64, "d_hidden": 32},
    "optim": {"lr": 0.003},
    "train": QUICK_TRAIN,
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


def quick_version(space: dict, *extras: dict) -> dict:
    """The laptop-sized version of ``space``: the QUICK settings, for a ticket also for its
    dense runs (``base.train``: a ticket's own ``train.*`` never reaches its dense run), a
    shorter early-stop margin for tickets, then ``extras``."""
    out = merged(space, QUICK)
    if space_recipes(space) & {"ticket", "norm_control"}:
        out = merged(out, {"base": {"train": QUICK_TRAIN}, "train": {"stop_margin": 500}})
    return merged(out, *extras)


def variants(*labelled: tuple[str, dict]) -> dict:
    """A grid over variants: each (label, settings) a trial whose settings are merged over the
    space's others (for studies whose cells are no product of grid axes, e.g. one grokking
    ticket against several controls)."""
    return tune.grid_search([{"label": label, **settings} for label, settings in labelled])
