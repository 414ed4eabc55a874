"""Dense vs grokking ticket on the other modular operations."""
from ray import tune

from ._common import TICKET_STOP, merged, quick_version

DESCRIPTION = "dense vs grokking ticket for sub, mul, div, x^2+y^2, x^2+xy+y^2, x^3+xy (Fig. 2c)"

OPERATIONS = ["sub", "mul", "div", "x2_plus_y2", "x2_xy_y2", "x3_xy"]


def param_space(quick: bool = False) -> dict:
    """One ticket trial per operation, carrying its dense runs as base rows; a ticket stops
    2000 steps after it generalised. At these settings (p=67, 40 % of the pairs a >= b, 30k
    steps) most of these dense runs do not generalise (README: only 7 of 18 did here), so
    their tickets are non-grokking ones (column base_generalised)."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6],
                    "task": {"op": tune.grid_search(OPERATIONS)}}, TICKET_STOP)
    if quick:
        return quick_version(space, {"seeds": [0],
                                     "task": {"op": tune.grid_search(OPERATIONS[:3])}})
    return space
