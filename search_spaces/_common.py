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

# The quick size (--quick), chosen by measurement (README, "The quick reproduction"): the paper's
# task (p=67, train fraction 0.4) and full-width MLP (500 / 48), at lr 2e-3 instead of 1e-3 so
# that dense runs grok within 20k steps (t_gen 7,230-12,950 over seeds 0, 1, 2, 5, 6), while a
# ticket at k=0.6 generalises by step ~1000 (12-19x sooner: the headline's 1/10 holds for any
# pair of those seeds). A narrower network or a smaller p is cheaper but loses the effect
# (width 64/32 at p=23: ticket 1,280 vs dense 1,500; p=47: seed 0 never groks in 20k). A larger
# lr shrinks it (lr 5e-3: 5.4x, lr 1e-2: none). Tickets get a short budget of their own.
QUICK_DENSE_TRAIN = {"steps": 20_000, "checkpoint_every": 1000}
QUICK_TICKET_TRAIN = {"steps": 4000, "stop_margin": 300}
QUICK = {"optim": {"lr": 0.002}, "train": QUICK_DENSE_TRAIN}

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
    """The quick version of ``space``: the QUICK settings; for a ticket, QUICK_DENSE_TRAIN for
    its dense runs (``base.train``: a ticket's own ``train.*`` never reaches its dense run) and
    the ticket's own short budget (QUICK_TICKET_TRAIN); then ``extras``."""
    out = merged(space, QUICK)
    if space_recipes(space) & {"ticket", "norm_control"}:
        out = merged(out, {"base": {"train": QUICK_DENSE_TRAIN}, "train": QUICK_TICKET_TRAIN})
    return merged(out, *extras)


def variants(*labelled: tuple[str, dict]) -> dict:
    """A grid over variants: each (label, settings) a trial whose settings are merged over the
    space's others (for studies whose cells are no product of grid axes, e.g. one grokking
    ticket against several controls)."""
    return tune.grid_search([{"label": label, **settings} for label, settings in labelled])
