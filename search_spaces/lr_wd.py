"""Dense runs over learning rate and weight decay."""
from ray import tune

from ._common import quick_version

DESCRIPTION = "dense runs over lr (1e-4, 1e-3, 1e-2) x weight decay (0.1, 1, 10) (App. M, Fig. 22-23)"


def param_space(quick: bool = False) -> dict:
    """The full grid; App. M's two scans are its wd=1 row and its lr=1e-2 column."""
    space = {"recipe": "dense", "seeds": [0, 1, 2],
             "optim": {"lr": tune.grid_search([1e-4, 1e-3, 1e-2]),
                       "weight_decay": tune.grid_search([0.1, 1.0, 10.0])}}
    if quick:
        # at the quick size lr 1e-2, wd 1 generalises by step ~5000 (seeds 0-1)
        return quick_version(space, {"seeds": [0, 1], "train": {"steps": 6000},
                                     "optim": {"lr": tune.grid_search([1e-3, 1e-2]),
                                               "weight_decay": tune.grid_search([0.1, 1.0])}})
    return space
