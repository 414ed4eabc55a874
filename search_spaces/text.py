"""Dense LSTM vs grokking ticket on binary sentiment (App. J, Fig. 19)."""
from ._common import merged

DESCRIPTION = ("dense LSTM vs grokking ticket on binary sentiment, k=0.6 (App. J): the synthetic "
               "corpus by default; --set task.corpus=aclimdb --set task.data_dir=FOLDER for IMDb")

# App. J: top-1000 words, length 500, 2-layer LSTM (embedding 64, hidden 128), Adam lr 1e-3 and
# weight decay 1e-3 (decoupled here: AdamW), binary cross-entropy (two logits), 25% test.
# Minibatches of 32: full-batch LSTM steps over thousands of reviews do not fit a CPU budget.
TEXT_TRAIN = {"steps": 20_000, "batch_size": 32, "eval_every": 200,
              "checkpoint_every": 5_000}
TEXT = {"task": {"name": "text"}, "model": {"name": "lstm"},
        "optim": {"lr": 1e-3, "weight_decay": 1e-3}, "train": TEXT_TRAIN,
        "base": {"train": {key: TEXT_TRAIN[key] for key in ("steps", "eval_every",
                                                             "checkpoint_every")}}}
QUICK_TEXT = {"steps": 300, "eval_every": 25, "checkpoint_every": 150}


def param_space(quick: bool = False) -> dict:
    """Seeds 0-2 at k=0.6 from the final step of each seed's dense run; a ticket stops 2000
    steps after it generalised. ``--quick``: 2 seeds, a small corpus (300 reviews of 40 tokens
    over 200 words), a narrow LSTM and 300 steps."""
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6]}, TEXT,
                   {"train": {"stop_margin": 2_000}})
    if quick:
        return merged(space, {"seeds": [0, 1],
                              "task": {"n_train": 300, "n_test": 200, "seq_len": 40,
                                       "vocab_size": 200},
                              "model": {"d_emb": 16, "d_hidden": 32},
                              "train": {**QUICK_TEXT, "stop_margin": 100},
                              "base": {"train": QUICK_TEXT}})
    return space
