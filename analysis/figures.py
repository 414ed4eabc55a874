"""Figures of training curves."""
from __future__ import annotations

import io
from typing import Optional

import pandas as pd


def accuracy_curves_png(curves: pd.DataFrame, base_curves: Optional[pd.DataFrame] = None,
                        title: str = "") -> bytes:
    """Train (dashed) and test (solid) accuracy per member against step, log-scaled like
    Fig. 1 of the paper; ``base_curves`` (the dense runs behind tickets) in grey.

    ``curves`` has columns step, train_acc, test_acc and identifies members by seed and, if
    present, pruning_rate. Returns PNG bytes (written wherever the caller's storage is).
    """
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    if base_curves is not None:
        for seed, run in base_curves.groupby("seed"):
            steps = run["step"].clip(lower=1)
            ax.plot(steps, run["test_acc"], color="0.55", lw=1.2,
                    label="dense test" if seed == base_curves["seed"].min() else None)
            ax.plot(steps, run["train_acc"], color="0.55", lw=1.0, ls="--",
                    label="dense train" if seed == base_curves["seed"].min() else None)
    keys = ["seed", "pruning_rate"] if "pruning_rate" in curves.columns else ["seed"]
    colours = plt.get_cmap("viridis")
    groups = list(curves.groupby(keys))
    for i, (key, run) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        name = ", ".join(f"{k}={v:g}" for k, v in zip(keys, key))
        colour = colours(i / max(1, len(groups) - 1) * 0.85)
        steps = run["step"].clip(lower=1)
        ax.plot(steps, run["test_acc"], color=colour, lw=1.6, label=f"{name} test")
        ax.plot(steps, run["train_acc"], color=colour, lw=1.0, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (dashed: train, solid: test)")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.95, color="0.8", lw=0.8, zorder=0)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right", ncol=2 if len(groups) > 6 else 1)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()
