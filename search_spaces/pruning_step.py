"""Tickets whose mask is taken at different steps of the dense run."""
from ray import tune

from ._common import QUICK_DENSE_TRAIN, TICKET_STOP, merged, quick_version

DESCRIPTION = ("tickets with the mask taken every 2k dense steps, k=0.6 "
               "(Fig. 4a: non-grokking vs grokking)")


def param_space(quick: bool = False) -> dict:
    """One trial per mask step t; all share one dense run per seed (column base_generalised
    tells grokking from non-grokking tickets). A ticket stops 2000 steps after it
    generalised."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6],
                    "prune": {"step": tune.grid_search(list(range(0, 30_001, 2_000)))}},
                   TICKET_STOP)
    if quick:
        # the quick dense runs generalise at 7k-13k: masks of steps 0-5000 are non-grokking
        return quick_version(space, {"seeds": [0, 1], "prune": {
            "step": tune.grid_search([0, 2000, 5000, QUICK_DENSE_TRAIN["steps"]])}})
    return space
