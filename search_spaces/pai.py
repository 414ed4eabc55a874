"""Grokking ticket against pruning at initialisation at the same rate (Fig. 5b)."""
from ._common import TICKET_STOP, merged, quick_version, variants

DESCRIPTION = ("grokking ticket vs random, SNIP, GraSP and SynFlow masks of theta_0, k=0.6 "
               "(Fig. 5b: sparsity alone does not remove the delay)")
PAI_METHODS = ("random", "snip", "grasp", "synflow")


def param_space(quick: bool = False) -> dict:
    """Seeds 0-2 at k=0.6: the grokking ticket (magnitude mask of the final dense step) and
    one ticket per pruning-at-initialisation method, whose mask scores theta_0 (``prune.step
    = 0``: no dense run needed). Each run stops 2000 steps after it generalised."""
    pai = [(method, {"prune": {"method": method, "step": 0}}) for method in PAI_METHODS]
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6],
                    "variant": variants(("grokking ticket", {}), *pai)}, TICKET_STOP)
    if quick:
        return quick_version(space, {"seeds": [0, 1]})
    return space
