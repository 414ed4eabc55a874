"""What every figure shares: matplotlib set up for files, titles that wrap, PNG bytes, and the
mean +- std band of a group of runs."""
from __future__ import annotations

import io
import textwrap

import pandas as pd


def pyplot():
    """matplotlib.pyplot drawing to files only (no display needed)."""
    import matplotlib  # heavy (~0.5 s): only when a figure is drawn
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def wrapped(title: str, width: int = 100) -> str:
    """``title`` broken into lines of at most ``width`` characters (a sweep's title lists its
    settings and would run off the figure)."""
    return "\n".join(textwrap.wrap(title, width)) if title else title


def png_bytes(fig, dpi: int) -> bytes:
    """The laid-out figure as PNG bytes; the figure is closed."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    return buffer.getvalue()


def band(ax, wide: pd.DataFrame, colour, label: str, log_x: bool, style: str = "-") -> None:
    """Mean line and +-1 std band of the members (columns) of ``wide`` against step."""
    mean, std = wide.mean(axis=1), wide.std(axis=1).fillna(0.0)
    steps = wide.index.to_numpy().clip(min=1) if log_x else wide.index.to_numpy()
    ax.plot(steps, mean.to_numpy(), color=colour, lw=1.6, ls=style, label=label)
    if style == "-":
        ax.fill_between(steps, (mean - std).to_numpy(), (mean + std).to_numpy(), color=colour,
                        alpha=0.18, lw=0)
