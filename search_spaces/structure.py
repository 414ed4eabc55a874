"""Structure over training: norms, Jaccard distance of masks, Fourier entropy (Fig. 6-8)."""
from ._common import merged, quick_version

DESCRIPTION = ("dense run and grokking ticket with norms, the Jaccard distance of consecutive "
               "masks and the Fourier entropy over training, k=0.6 (Fig. 6, 7, 8)")


def param_space(quick: bool = False) -> dict:
    """Seeds 0-2: the grokking ticket at k=0.6 (its curves) and its dense runs (rows and
    checkpoints every 1000 steps), both recording the Fourier entropy of the masked effective
    input weights at every evaluation. The ticket trains the dense run's 30k steps (no early
    stop: Fig. 6 and 8 compare the whole course)."""
    fourier = {"train": {"fourier_entropy": "shannon"}}
    space = merged({"recipe": "ticket", "seeds": [0, 1, 2], "rates": [0.6]}, fourier,
                   {"base": {"train": {"fourier_entropy": "shannon", "checkpoint_every": 1000}}})
    if quick:
        # the ticket's Fourier entropy has levelled off by its short budget's end
        return quick_version(space, {"seeds": [0, 1]}, fourier,
                             {"base": {"train": {"fourier_entropy": "shannon"}},
                              "train": {"stop_margin": None}})
    return space
