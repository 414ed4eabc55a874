"""Dense network vs grokking ticket (k = 0.6, mask from the final dense step)."""
from ._common import TICKET_STOP, merged, quick_version

DESCRIPTION = "dense vs grokking ticket, k=0.6, mask from the final step (Fig. 1, 2a)"


def param_space(quick: bool = False) -> dict:
    """Tickets of seeds 0-2; their dense runs come as base rows. A ticket stops 2000 steps
    after it generalised (the dense runs train their 30k steps)."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6]}, TICKET_STOP)
    return quick_version(space, {"seeds": [0, 1]}) if quick else space
