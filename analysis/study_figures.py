"""Each study's own figure (drawn like the paper's) and table, by study name.

``grok sweep`` / ``grok results --paper-figure`` write the figure as ``figure.png`` next to the
sweep and print the table; the report shows the figure under the study's claims. A study
without an entry here gets the generic sweep summary (``analysis.figures.sweep_summary_png``).
"""
from __future__ import annotations

from typing import Callable, Optional

import pandas as pd

from grok_core.paper import TABLE1_PAPER, TABLE1_STEPS

from .figures import dense_vs_ticket_png, variant_curves_png, variant_panels_png
from .results import SweepResults, accuracy_at_steps
from .structure import structure_png, summary


def dense_vs_ticket(loaded: SweepResults) -> bytes:
    """As Fig. 1 (left): accuracy of the dense runs and their grokking tickets, with delays."""
    return dense_vs_ticket_png(loaded, title=loaded.title())


def curves_by_variant(loaded: SweepResults) -> bytes:
    """As Fig. 5: test accuracy over training per variant, mean and spread over seeds, the
    dense runs behind the tickets in grey."""
    return variant_curves_png(loaded, title=loaded.title())


def edge_popup_curves(loaded: SweepResults) -> bytes:
    """Table 1 as curves: test accuracy per variant against the step since theta_mem (linear,
    as Table 1 reads it), mean and spread over seeds."""
    return variant_curves_png(loaded, title=loaded.title(), log_x=False, dense_label=None)


def task_panels(loaded: SweepResults) -> bytes:
    """Fig. 2d-e: one panel per task, the dense runs against their grokking tickets."""
    return variant_panels_png(loaded, title=loaded.title())


def structure_panels(loaded: SweepResults) -> bytes:
    """Fig. 6-8 in four panels (``analysis.structure.structure_png``)."""
    return structure_png(loaded, title=loaded.title())


def edge_popup_table(loaded: SweepResults) -> pd.DataFrame:
    """Table 1: test accuracy "mean +- std" over seeds, one row per variant, one column per
    step of the paper that the runs reached."""
    long = accuracy_at_steps(loaded.curves, loaded.trials, TABLE1_STEPS)
    if long.empty:
        return long
    long["test_acc"] = [f"{m:.2f} +- {s:.2f}" if s == s else f"{m:.2f}"
                        for m, s in zip(long["test_acc_mean"], long["test_acc_std"])]
    order = list(dict.fromkeys(long["variant"]))
    wide = long.pivot(index="variant", columns="step", values="test_acc").loc[order]
    wide.columns = [f"step {step}" for step in wide.columns]
    paper = [" / ".join(f"{v:.2f}" for v in TABLE1_PAPER[v]) if v in TABLE1_PAPER else "-"
             for v in order]
    return wide.reset_index().assign(
        seeds=long.groupby("variant")["n"].max().loc[order].values,
        **{"paper (" + " / ".join(map(str, TABLE1_STEPS)) + ")": paper})


def structure_table(loaded: SweepResults) -> pd.DataFrame:
    """Per seed: the dense run's t_gen and Jaccard peak, and when the Fourier entropy of the
    dense run and of the ticket fell half way (``analysis.structure.summary``)."""
    return summary(loaded)


STUDY_FIGURES: dict[str, Callable[[SweepResults], bytes]] = {
    "headline": dense_vs_ticket,
    "transformer": dense_vs_ticket,
    "digits": dense_vs_ticket,
    "norm_control": curves_by_variant,
    "pai": curves_by_variant,
    "text": dense_vs_ticket,  # one dense LSTM against its ticket, as Fig. 19
    "edge_popup": edge_popup_curves,
    "tasks": task_panels,
    "structure": structure_panels,
}
STUDY_TABLES: dict[str, Callable[[SweepResults], pd.DataFrame]] = {
    "edge_popup": edge_popup_table,
    "structure": structure_table,
}


def study_figure(loaded: SweepResults) -> Optional[bytes]:
    """The study's own figure of a loaded sweep (PNG bytes), or None if it draws none."""
    draw = STUDY_FIGURES.get(loaded.study or "")
    return draw(loaded) if draw is not None else None


def study_table(loaded: SweepResults) -> Optional[pd.DataFrame]:
    """The study's own table of a loaded sweep, or None if it has none."""
    make = STUDY_TABLES.get(loaded.study or "")
    return make(loaded) if make is not None else None
