"""Dense network vs grokking ticket (k = 0.6, mask from the final dense step)."""
from ._common import QUICK, merged

DESCRIPTION = "dense vs grokking ticket, k=0.6, mask from the final step (Fig. 1, 2a)"


def param_space(quick: bool = False) -> dict:
    """One ticket trial; its dense runs come as base rows. Pairs a>=b as the authors' code
    (with a>b, seeds 1 and 2 have not grokked by step 30k, see the README)."""
    space = {"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6], "task": {"pairs": "ge"}}
    # the quick model is 8x narrower: a milder rate keeps its tickets trainable
    return merged(space, QUICK, {"rates": [0.3, 0.6]}) if quick else space
