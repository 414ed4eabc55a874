"""Edge-popup from a memorising solution (Sec. 5.2, Table 1)."""
from grok_core.paper import TABLE1_STEPS

from ._common import QUICK, merged, variants

DESCRIPTION = ("from theta_mem (dense step 1000, lr 0.01): weight decay vs edge-popup without "
               "and with weight updates, k=0.6 (Table 1)")


def param_space(quick: bool = False) -> dict:
    """Seeds 0-4 from each seed's dense run at step 1000 (AdamW lr 0.01, wd 1; that run
    trains 1000 steps), then 2000 steps of: WD (ordinary training), EP w/o WD (scores only,
    weights bitwise frozen), EP w/ WD (scores and weights), each tensor keeping its top 40 %
    by |score|. No early stop: the table reads test accuracy at fixed steps."""
    space = {"recipe": "edge_popup", "seeds": [0, 1, 2, 3, 4], "rates": [0.6],
             "optim": {"lr": 0.01, "weight_decay": 1.0},
             "edge_popup": {"start_step": 1000},
             "train": {"steps": max(TABLE1_STEPS), "eval_every": 10},
             "variant": variants(("WD", {"edge_popup": {"variant": "wd"}}),
                                 ("EP w/o WD", {"edge_popup": {"variant": "ep"}}),
                                 ("EP w/ WD", {"edge_popup": {"variant": "ep_wd"}}))}
    if quick:  # p=23, theta_mem at step 100, 600 steps
        return merged(space, {key: QUICK[key] for key in ("task", "model")},
                      {"seeds": [0, 1], "optim": {"lr": 0.01}, "edge_popup": {"start_step": 100},
                       "train": {"steps": 600, "eval_every": 10}})
    return space
