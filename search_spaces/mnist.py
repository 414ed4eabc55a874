"""Dense network vs grokking ticket on MNIST read from the user's IDX files (Fig. 13)."""
from ._common import merged
from .digits import param_space as digits_space

DESCRIPTION = ("dense vs grokking ticket on MNIST (Omnigrok's setting: 1000 train images, init "
               "scale 8, MSE), k=0.6; needs --set task.data_dir=FOLDER of the IDX files (Fig. 13)")


def param_space(quick: bool = False) -> dict:
    """The ``digits`` study on MNIST: the same settings and budget; the folder of the four IDX
    files comes from ``--set task.data_dir=...`` (nothing is downloaded)."""
    return merged(digits_space(quick), {"task": {"name": "mnist"}})
