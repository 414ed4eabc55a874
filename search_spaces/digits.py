"""Dense network vs grokking ticket on scikit-learn's 8x8 digits (Omnigrok's MNIST setting)."""
from ._common import TICKET_STOP, merged

DESCRIPTION = ("dense vs grokking ticket on the 8x8 digits (1000 train images, init scale 8, "
               "MSE), k=0.6: the offline stand-in for MNIST (Fig. 13)")
# Omnigrok's MNIST setting (paper-settings.md "Other tasks"): a large initialisation makes the
# network memorise first; weight decay 0.01 (Omnigrok) and MSE against one-hot targets.
DIGITS = {"task": {"name": "digits"}, "model": {"init_scale": 8.0},
          "optim": {"lr": 1e-3, "weight_decay": 0.01},
          "train": {"loss": "mse", "steps": 100_000, "eval_every": 100,
                    "checkpoint_every": 10_000}}


def param_space(quick: bool = False) -> dict:
    """Tickets of seeds 0-2 at k=0.6 from the final step of their dense runs (100k steps, as
    Omnigrok); a ticket stops 2000 steps after it generalised."""
    dense_train = {key: DIGITS["train"][key] for key in ("steps", "eval_every",
                                                         "checkpoint_every")}
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6]}, DIGITS,
                   {"base": {"train": dense_train}}, TICKET_STOP)
    if quick:  # narrow and short: it memorises, but 2000 steps are far from grokking
        short = {"steps": 2000, "checkpoint_every": 1000, "eval_every": 50}
        return merged(space, {"seeds": [0, 1], "model": {"d_hidden": 32},
                              "train": {**short, "stop_margin": 500},
                              "base": {"train": short}})
    return space
