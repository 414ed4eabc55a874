"""Dense vs grokking ticket with the one-layer transformer."""
from ._common import TICKET_STOP, merged, quick_version

DESCRIPTION = "dense vs grokking ticket with the 1-layer transformer, k=0.6 (Fig. 2b)"


def param_space(quick: bool = False) -> dict:
    """The transformer of App. B.2 (d_model 128, W_pos and MLP biases), seeds 0-2; a ticket
    stops 2000 steps after it generalised. Only seed 0's dense run generalises here (t_gen
    17,010); seeds 1 and 2 plateau (test accuracy 0.81 and 0.91 at 30k, 0.79 and 0.93 at 60k),
    so their tickets are non-grokking ones (column base_generalised)."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6],
                    "model": {"name": "transformer"}}, TICKET_STOP)
    if quick:
        return quick_version(space, {"seeds": [0], "model": {"d_emb": 32, "d_hidden": 32},
                                     "train": {"steps": 2000},
                                     "base": {"train": {"steps": 2000}}})
    return space
