"""Dense network vs grokking ticket on scikit-learn's 8x8 digits (Omnigrok's MNIST setting)."""
from ._common import TICKET_STOP, merged

DESCRIPTION = ("dense vs grokking ticket on the 8x8 digits (1000 train images, init scale 8, "
               "MSE, wd 0.1), k=0.6: the offline stand-in for MNIST (Fig. 13)")
# Omnigrok's MNIST setting as the authors ran it (paper-settings.md, last section): a large
# initialisation (weights x 8) makes the network memorise first, MSE against one-hot targets,
# AdamW lr 1e-3 and weight decay 0.1, which shrinks the weights into the range where the
# network generalises. Measured (README, "Digits"): the dense runs memorise by step 1,400-2,800
# and generalise at 12,000 (seeds 0, 1), so 30k steps hold a grokked mask. Omnigrok's own wd
# 0.01 decays ten times slower: test accuracy 0.20 at step 20k, grokking beyond 100k steps.
DIGITS_TRAIN = {"steps": 30_000, "eval_every": 100, "checkpoint_every": 10_000}
DIGITS = {"task": {"name": "digits"}, "model": {"init_scale": 8.0},
          "optim": {"lr": 1e-3, "weight_decay": 0.1},
          "train": {"loss": "mse", **DIGITS_TRAIN}}
# The quick size: lr QUICK_LR makes the weight decay (lr x wd per step) act QUICK_LR / 1e-3
# times faster, so the same memorise-then-generalise curve fits in QUICK_STEPS.
QUICK_LR = 4e-3
QUICK_TRAIN = {"steps": 6_000, "eval_every": 50, "checkpoint_every": 2_000}


def param_space(quick: bool = False) -> dict:
    """Tickets of seeds 0-2 at k=0.6 from the final step of their dense runs (30k steps); a
    ticket stops 2000 steps after it generalised. ``--quick``: seeds 0-1 at lr QUICK_LR for
    QUICK_TRAIN's steps (the same network and data)."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6]}, DIGITS,
                   {"base": {"train": DIGITS_TRAIN}}, TICKET_STOP)
    if quick:
        return merged(space, {"seeds": [0, 1], "optim": {"lr": QUICK_LR},
                              "train": {**QUICK_TRAIN, "stop_margin": 500},
                              "base": {"train": QUICK_TRAIN}})
    return space
