"""Grokking tickets across pruning rates."""
from ._common import TICKET_STOP, merged, quick_version

DESCRIPTION = "grokking tickets at pruning rates 0.0-0.9, mask from the final step (Fig. 3, 4b)"


def param_space(quick: bool = False) -> dict:
    """Every (seed, rate) member of seeds 0-2; a ticket stops 2000 steps after it
    generalised (Fig. 3 needs its curve to t_gen and Fig. 4b only t_mem and t_gen)."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2],
                    "rates": [round(0.1 * i, 1) for i in range(10)]}, TICKET_STOP)
    if quick:
        # Rate 0 is the dense network itself (an all-ones mask): the quick sweep leaves it to
        # its dense runs (the claim reads them as k=0) instead of training it again for their
        # 20k steps; the tickets get 6000 steps (k=0.2 generalised by 4,000-4,700 on seeds
        # 0-1; a rate that never does stops there rather than at 20k).
        return quick_version(space, {"seeds": [0, 1], "rates": [0.2, 0.4, 0.6, 0.8],
                                     "train": {"steps": 6000}})
    return space
