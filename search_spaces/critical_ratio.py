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
from . import transformer
from ._common import merged, quick_version

DESCRIPTION = ("tickets without weight decay over pruning rates 0.5-0.95 (App. E, Fig. 16a; "
               "grok critical-ratio searches its edges)")

BUDGET = {"train": {"steps": 20_000, "stop_margin": 200}}
SETTINGS = {"recipe": "ticket", "optim": {"weight_decay": 0.0},
            "base": {"optim": {"weight_decay": 1.0}}}
GRID = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.5 ... 0.95
# what grok critical-ratio searches by default, and its --quick version
SEARCH = {"seeds": [0, 1, 2], "low": 0.5, "high": 0.95, "trials": 40}
# At the quick size no ticket trained without weight decay generalised (seeds 0-1, k 0.5-0.9:
# within 8k steps at lr 2e-3 or 1e-3, nor within 20k at k 0.6-0.7; final test accuracy
# 0.15-0.57): the window needs the full size, so the quick search and grid stay short (they
# check the pipeline and show the plateau) and the page says so.
QUICK_SEARCH = {"seeds": [0, 1], "low": 0.3, "high": 0.95, "trials": 4}

# Per architecture (``model.name``): the settings a search adds under the user's --set, and its
# defaults. The transformer's masks come from the transformer study's dense runs (its reading:
# no W_pos, no biases, wd 2, where every seed groks; at wd 1 seed 1 never generalises, so its
# masks would be non-grokking ones), and the tickets train without weight decay as always.
# Its budget fits the transformer's cost (~90 member-steps/s on one core against the MLP's
# ~600): 3 seeds x 12 trials x at most 10k steps, 24 min on 2 cores (README: "Both
# architectures"); --trials 24 --set train.steps=20000 is the 90-minute version. Measured: no
# window at either budget (every ticket below chance at every rate through 20k steps).
ARCHITECTURES = {
    "mlp": {"settings": {}, "search": SEARCH},
    "transformer": {
        "settings": {"model": transformer.READING["model"],
                     "base": {"optim": transformer.READING["optim"]},
                     "train": {"steps": 10_000}},
        "search": {**SEARCH, "trials": 12}},
}


def _architecture(model: str) -> dict:
    """``ARCHITECTURES``' entry of ``model``; the MLP's for any other (configs refuse an
    unknown model name later, with the list of known ones)."""
    return ARCHITECTURES.get(model, ARCHITECTURES["mlp"])


def search_defaults(model: str = "mlp", quick: bool = False) -> dict:
    """Seeds, range and trial count ``grok critical-ratio`` uses for ``model`` by default."""
    return dict(QUICK_SEARCH if quick else _architecture(model)["search"])


def param_space(quick: bool = False, model: str = "mlp") -> dict:
    """The Fig. 16a grid: seeds 0-2 x rates 0.5-0.95 (quick: seeds 0-1, three rates), for
    the MLP or (``model``) another architecture with its own settings (``ARCHITECTURES``)."""
    space = merged(SETTINGS, BUDGET, {"seeds": [0, 1, 2], "rates": GRID},
                   _architecture(model)["settings"])
    if quick:
        # 2000 steps: enough to show the plateau (no quick ticket generalised within 20k)
        return quick_version(space, {"train": {"steps": 2_000, "stop_margin": 200},
                                     "seeds": [0, 1], "rates": [0.5, 0.7, 0.9]})
    return space
