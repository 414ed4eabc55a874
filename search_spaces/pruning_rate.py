"""Grokking tickets across pruning rates."""
from ._common import QUICK_DENSE_TRAIN, TICKET_STOP, merged, quick_version

DESCRIPTION = "grokking tickets at pruning rates 0.0-0.9, mask from the final step (Fig. 3, 4b)"


def param_space(quick: bool = False) -> dict:
    """Every (seed, rate) member of seeds 0-2; a ticket stops 2000 steps after it
    generalised (Fig. 3 needs its curve to t_gen and Fig. 4b only t_mem and t_gen)."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2],
                    "rates": [round(0.1 * i, 1) for i in range(10)]}, TICKET_STOP)
    if quick:  # rate 0 is the dense network again: it gets the dense runs' budget
        return quick_version(space, {"seeds": [0, 1], "rates": [0.0, 0.2, 0.4, 0.6, 0.8],
                                     "train": {"steps": QUICK_DENSE_TRAIN["steps"]}})
    return space
