"""Dense vs grokking ticket with the one-layer transformer."""
from ._common import TICKET_STOP, merged, quick_version

DESCRIPTION = ("dense vs grokking ticket with the 1-layer transformer (authors' reading: no W_pos, "
               "no MLP biases; wd 2), k=0.6 (Fig. 2b)")

# The reading the study trains, measured (README, "Which transformer"): the authors' code (no
# positional embedding, no MLP biases) with weight decay 2 groks for seeds 0-3 by 30k steps
# (t_gen 15,120 / 16,020 / 8,490 / 8,050). At the paper's wd 1 it does not: with W_pos and
# biases seeds 1 and 2 plateau at test accuracy 0.81 and 0.91 (flat through 60k), without them
# seed 1 stays at 0.64. The paper's architecture stays one flag away:
# --set model.pos_embed=true --set model.biases=true --set optim.weight_decay=1.
READING = {"model": {"name": "transformer", "pos_embed": False, "biases": False},
           "optim": {"weight_decay": 2.0}}


# The quick size, measured (README, "The quick reproduction"): (a+b) mod 31 over every ordered
# pair, half of them for training, width 64 / 128, lr 1e-3, at the paper's weight decay 1, the
# mask from dense step 15,000. Dense runs grok at 1,540-3,730 (seeds 0-3, 5, 6), tickets 2.4x
# sooner on seeds 0-1 and 3.4x on seeds 2-3, but on seeds 5-6 one ticket plateaus at 0.93: the
# effect is about the criterion's 2x here, as at full size (2.6x). A mask from step 6,000 or
# 10,000 gives less (1.7x, 2.0x on seeds 0-1). At wd 2 this small task groks too soon for a
# delay to remove (dense 1,270 / 2,360, tickets 1,410 / 1,680); with fewer training pairs
# (fraction 0.4, or pairs a >= b) the dense runs mostly do not generalise in 12-15k steps; at
# p=67 a transformer step costs ~5x this one.
QUICK_SIZE = {"task": {"p": 31, "pairs": "all", "train_fraction": 0.5},
              "model": {"d_emb": 64, "d_hidden": 128},
              "optim": {"lr": 1e-3, "weight_decay": 1.0},
              "base": {"train": {"steps": 15_000, "checkpoint_every": 1000}}}


def param_space(quick: bool = False) -> dict:
    """The transformer of App. B.2 (d_model 128, one head) in the reading above, seeds 0-2; a
    ticket and its dense run train with ``READING``'s weight decay, and a ticket stops 2000
    steps after it generalised."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6]}, READING,
                   TICKET_STOP)
    return quick_version(space, {"seeds": [0, 1]}, QUICK_SIZE) if quick else space
