"""Grokking ticket against dense runs whose initial weight norm matches it (Fig. 5a)."""
from ._common import TICKET_STOP, merged, quick_version, variants

DESCRIPTION = ("grokking ticket vs L1- and L2-norm-matched dense runs, k=0.6 (Fig. 5a: the "
               "norm alone does not remove the delay)")
GROKKING_TICKET = ("grokking ticket", {"recipe": "ticket"})
L1_MATCHED = ("L1 norm-matched dense", {"recipe": "norm_control", "norm_control": {"norm": "l1"}})
L2_MATCHED = ("L2 norm-matched dense", {"recipe": "norm_control", "norm_control": {"norm": "l2"}})


def param_space(quick: bool = False) -> dict:
    """Seeds 0-2 at k=0.6: the ticket (mask from the final step of its dense run) and, per
    seed, theta_0 rescaled so that its global L1 (or L2) norm equals the ticket's rewound
    weights' (``grok_core.recipes.norm_control_members``). All share the dense runs; each run
    stops 2000 steps after it generalised."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6],
                    "variant": variants(GROKKING_TICKET, L1_MATCHED, L2_MATCHED)}, TICKET_STOP)
    if quick:
        return quick_version(space, {"seeds": [0, 1]})
    return space
