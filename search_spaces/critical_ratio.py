"""Tickets trained without weight decay over a range of pruning rates (App. E, Fig. 16a).

``grok sweep critical_ratio`` trains the grid of rates below (the paper's Fig. 16a: final test
accuracy against k); ``grok critical-ratio`` takes the same settings and searches the window's
edges adaptively with Optuna instead of a grid (``SEARCH``).

Settings (App. E): the mask comes from the final step of the dense run trained *with* weight
decay 1 (``base.optim.weight_decay``: a ticket hands its optimiser to its dense run otherwise),
and the ticket trains with weight decay 0. Step budget 20k: tickets that generalise without
weight decay did so by step 550-8,160 here (p=67, seeds 0-2, k 0.6-0.8), and the authors' own
run at k=0.81 still plateaued at 10k; a member stops 200 steps after it generalised (only
whether and when it did matters here). The budget is part of a search's identity: a search
resumed with another one is refused.
"""
from ._common import merged, quick_version

DESCRIPTION = ("tickets without weight decay over pruning rates 0.5-0.95 (App. E, Fig. 16a; "
               "grok critical-ratio searches its edges)")

BUDGET = {"train": {"steps": 20_000, "stop_margin": 200}}
SETTINGS = {"recipe": "ticket", "optim": {"weight_decay": 0.0},
            "base": {"optim": {"weight_decay": 1.0}}}
GRID = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.5 ... 0.95
# what grok critical-ratio searches by default, and its --quick version
SEARCH = {"seeds": [0, 1, 2], "low": 0.5, "high": 0.95, "trials": 40}
QUICK_SEARCH = {"seeds": [0, 1], "low": 0.3, "high": 0.95, "trials": 6}


def param_space(quick: bool = False) -> dict:
    """The Fig. 16a grid: seeds 0-2 x rates 0.5-0.95 (quick: p=23, seeds 0-1, four rates)."""
    space = merged(SETTINGS, BUDGET, {"seeds": [0, 1, 2], "rates": GRID})
    if quick:
        return quick_version(space, {"train": {"stop_margin": 200}, "seeds": [0, 1],
                                     "rates": [0.3, 0.5, 0.7, 0.9]})
    return space
