"""Grokking tickets across pruning rates."""
from ._common import QUICK, merged

DESCRIPTION = "grokking tickets at pruning rates 0.0-0.9, mask from the final step (Fig. 3, 4b)"


def param_space(quick: bool = False) -> dict:
    """Every (seed, rate) member trains in one cohort; seeds 0-2."""
    space = {"recipe": "ticket", "seeds": [0, 1, 2],
             "rates": [round(0.1 * i, 1) for i in range(10)]}
    if quick:
        return merged(space, QUICK, {"seeds": [0, 1]})  # every rate: the curve is the point
    return space
