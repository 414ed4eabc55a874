"""Figures of training curves: a sweep's summary, a critical-ratio search, dense runs against
tickets and variants against each other."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from .critical_ratio.fit import window_centre
from .plotting import band, png_bytes, pyplot, wrapped
from .results import curves_with_cells, median_t_gen, members_wide, varying_columns


def accuracy_curves_png(curves: pd.DataFrame, base_curves: Optional[pd.DataFrame] = None,
                        title: str = "") -> bytes:
    """Train (dashed) and test (solid) accuracy per member against step, log-scaled like
    Fig. 1 of the paper; ``base_curves`` (the dense runs behind tickets) in grey.

    ``curves`` has columns step, train_acc, test_acc and identifies members by seed and, if
    present, pruning_rate. Returns PNG bytes (written wherever the caller's storage is).
    """
    plt = pyplot()
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
        ax.set_title(wrapped(title, 80), fontsize=9)
    ax.legend(fontsize=7, loc="lower right", ncol=2 if len(groups) > 6 else 1)
    return png_bytes(fig, dpi=120)


def mean_over_members(curves: pd.DataFrame, column: str = "test_acc") -> pd.Series:
    """Mean of ``column`` per step over the members in ``curves``, a member that stopped early
    holding its last value (dropping it would pull the mean down where it stopped)."""
    return members_wide(curves, column).mean(axis=1)


def _cell_label(columns: list[str], values: tuple) -> str:
    return ", ".join(f"{c.split('.')[-1]}={v:g}" if isinstance(v, float)
                     else f"{c.split('.')[-1]}={v}" for c, v in zip(columns, values))


def sweep_summary_png(loaded, title: str = "") -> bytes:
    """A sweep at a glance, from what ``analysis.results.load`` returns. Left: test accuracy
    against step (log), mean over seeds (a ticket that stopped early holds its last value), one
    line per cell and pruning rate; the dense runs
    behind tickets in grey. Right: steps to memorise (t_mem, open markers) and to generalise
    (t_gen, filled) against pruning rate, mean and std over seeds, one colour per cell (with a
    single pruning rate: against the cell); the dense runs' means as grey lines. A rate none of
    whose runs generalised has no t_gen point. Returns PNG bytes."""
    plt = pyplot()
    members, curves, trials = loaded.members, loaded.curves, loaded.trials
    cells = [c for c in varying_columns(members) if c in trials.columns]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    colours = plt.get_cmap("viridis")

    if not loaded.base_curves.empty:
        for i, (_, part) in enumerate(loaded.base_curves.groupby("dense_key")):
            mean = part.groupby("step")["test_acc"].mean()
            left.plot(mean.index.to_numpy().clip(min=1), mean.to_numpy(), color="0.6", lw=1.4,
                      label="dense runs" if i == 0 else None)
    several_rates = members["pruning_rate"].nunique() > 1
    groups = list(members.groupby(cells, dropna=False)) if cells else [((), members)]
    dense_per_cell = _dense_runs_per_cell(loaded, cells) if not several_rates else None
    if dense_per_cell is not None:  # each cell (an operation, say) beside its own dense runs
        _draw_dense_per_cell(right, dense_per_cell, cells, groups)
    elif not loaded.base.empty:
        for metric, style in (("t_gen", "-"), ("t_mem", "--")):
            if loaded.base[metric].notna().any():
                right.axhline(loaded.base[metric].mean(), color="0.6", ls=style, lw=1.2,
                              label=f"dense runs' {metric}")

    frame = curves.merge(trials[["trial", *cells]], on="trial") if cells else curves
    lines = list(frame.groupby([*cells, "pruning_rate"], dropna=False))
    for i, (key, part) in enumerate(lines):
        mean = mean_over_members(part)
        key = key if isinstance(key, tuple) else (key,)
        left.plot(mean.index.to_numpy().clip(min=1), mean.to_numpy(), lw=1.4,
                  color=colours(i / max(1, len(lines) - 1) * 0.9),
                  label=_cell_label([*cells, "pruning_rate"], key))
    left.set_xscale("log")
    left.set(xlabel="step", ylabel="test accuracy (mean over seeds)", ylim=(-0.02, 1.02))
    left.axhline(0.95, color="0.8", lw=0.8, zorder=0)
    left.legend(fontsize=6, loc="lower right", ncol=2 if len(lines) > 8 else 1)

    for i, (key, part) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        colour = colours(i / max(1, len(groups) - 1) * 0.9)
        stats = part.groupby("pruning_rate")[["t_mem", "t_gen"]].agg(["mean", "std"])
        x = stats.index.to_numpy() if several_rates else [i] * len(stats)
        label = _cell_label(cells, key) if cells else None
        right.errorbar(x, stats[("t_gen", "mean")], yerr=stats[("t_gen", "std")], fmt="o-",
                       color=colour, capsize=3, label=label)
        right.errorbar(x, stats[("t_mem", "mean")], yerr=stats[("t_mem", "std")], fmt="o--",
                       color=colour, mfc="none", capsize=3)
    right.set_yscale("log")
    right.set_ylabel("steps: t_gen (filled), t_mem (open)")
    runs = [members] + ([loaded.base] if not loaded.base.empty else [])
    if all(frame[["t_mem", "t_gen"]].isna().all().all() for frame in runs):  # else: empty
        right.text(0.5, 0.5, "no run reached the accuracy threshold\n(no t_mem, no t_gen yet)",
                   transform=right.transAxes, ha="center", va="center", color="0.4")
    if several_rates:
        right.set_xlabel("pruning rate")
    else:
        labels = ([_cell_label(cells, k if isinstance(k, tuple) else (k,)) for k, _ in groups]
                  if cells else [f"pruning rate {members['pruning_rate'].iloc[0]:g}"])
        right.set_xticks(range(len(groups)), labels, rotation=20 if cells else 0, fontsize=7)
    if ((cells and several_rates) or not loaded.base.empty) and \
            right.get_legend_handles_labels()[0]:
        right.legend(fontsize=6)
    if title:
        fig.suptitle(wrapped(title, 140), fontsize=10)
    return png_bytes(fig, dpi=110)


def _dense_runs_per_cell(loaded, cells: list[str]):
    """The dense runs behind the tickets with the cell columns of their trial, or None where
    they cannot be told apart by cell (no cells, or base rows without a trial)."""
    base = loaded.base
    if not cells or base.empty or "trial" not in base.columns:
        return None
    merged = base.merge(loaded.trials[["trial", *cells]], on="trial", how="left")
    return None if merged[cells].isna().all().all() else merged


def _draw_dense_per_cell(ax, dense, cells: list[str], groups) -> None:
    """Grey diamonds just right of each cell's ticket markers: its own dense runs' t_gen
    (filled) and t_mem (open), mean and std over seeds. One line across the panel would
    average the dense runs of different cells (operations that grok at 2k and never)."""
    labelled = set()
    for i, (key, _) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        own = dense[np.logical_and.reduce([dense[c] == v for c, v in zip(cells, key)])]
        for metric, face in (("t_gen", "0.55"), ("t_mem", "none")):
            values = own[metric].astype(float)
            if values.notna().any():
                ax.errorbar([i + 0.2], [values.mean()], yerr=[values.std()], fmt="D",
                            color="0.55", mfc=face, capsize=3,
                            label=None if metric in labelled else f"dense runs' {metric}")
                labelled.add(metric)


def critical_summary_png(search, dpi: int = 110) -> bytes:
    """A critical-ratio search (``analysis.critical_ratio.CriticalSearch``) in two panels, or
    several (``CriticalSearches``: one per architecture), one row of two panels each.

    Left: every member outcome (generalised 1 / not 0, jittered, coloured by seed) against the
    pruning rate, the fitted P(generalise | k) of each flank with its 95 % band, and both
    edges with their intervals. Right: final test accuracy against k per seed (the paper's
    Fig. 16a), with the accuracy threshold."""
    plt = pyplot()
    searches = list(search.values()) if hasattr(search, "values") else [search]
    fig, axes = plt.subplots(len(searches), 2, figsize=(11, 5.0 * len(searches)),
                             squeeze=False)
    for one, (left, right) in zip(searches, axes):
        _draw_search(plt, one, left, right)
    names = ", ".join(one.name for one in searches)
    fig.suptitle(f"critical pruning ratio: {names}", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig, dpi)


def _draw_search(plt, search, left, right) -> None:
    """One search's two panels (``critical_summary_png``)."""
    members, estimate = search.members.reset_index(drop=True), search.estimate
    seeds = sorted(members["seed"].dropna().unique().tolist())
    colours = {seed: plt.cm.tab10(i % 10) for i, seed in enumerate(seeds)}
    jitter = np.random.default_rng(0).uniform(-0.04, 0.04, len(members))
    no_window = set(estimate.seeds_without_window)
    for seed in seeds or [None]:
        rows = members if seed is None else members[members["seed"] == seed]
        hollow = seed in no_window  # not in the fits: drawn as open circles
        left.scatter(rows["pruning_rate"], rows["generalised"].astype(float)
                     + jitter[rows.index.to_numpy()], s=14, alpha=0.8,
                     facecolors="none" if hollow else colours.get(seed, "grey"),
                     edgecolors=colours.get(seed, "grey"),
                     label=f"seed {seed}" + (" (no window, not fitted)" if hollow else ""))
    settings = search.settings()
    grid = np.linspace(settings["low"], settings["high"], 400)
    for fit, colour, label in ((estimate.upper, "crimson", "upper edge"),
                               (estimate.lower, "navy", "lower edge")):
        if fit.status != "ok":
            continue
        side = grid >= estimate_centre(members) if fit.falling else grid <= estimate_centre(members)
        low, high = fit.band(grid[side])
        left.fill_between(grid[side], low, high, color=colour, alpha=0.15)
        left.plot(grid[side], fit.probability(grid[side]), color=colour,
                  label=f"{label} {fit.describe()}")
        left.axvline(fit.estimate, color=colour, lw=0.8, ls="--")
    left.set_xlabel("pruning rate k")
    left.set_ylabel("generalised (member outcomes) / fitted P")
    left.set_ylim(-0.1, 1.1)
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    left.set_title(f"{search.name} ({search.model}): {estimate.members} members, "
                   f"{estimate.trials} trials, {settings['steps']} steps, wd 0", fontsize=9)
    for seed in seeds:
        rows = members[members["seed"] == seed].sort_values("pruning_rate")
        right.plot(rows["pruning_rate"], rows["final_test_acc"], "o-", ms=3, lw=0.8,
                   color=colours[seed], label=f"seed {seed}")
    right.axhline(0.95, color="grey", lw=0.8, ls=":")
    right.set_xlabel("pruning rate k")
    right.set_ylabel("final test accuracy")
    right.set_ylim(-0.02, 1.02)
    right.set_title("final test accuracy without weight decay (Fig. 16a)", fontsize=9)
    if seeds:
        right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=5)


def estimate_centre(members: pd.DataFrame) -> float:
    """The window's centre of a search's outcomes (where its two flanks meet)."""
    centre = window_centre(members["pruning_rate"], members["generalised"])
    return centre if centre is not None else float(members["pruning_rate"].median())


def _runs_label(members: pd.DataFrame) -> str:
    """What to call a sweep's runs when no setting tells them apart: by their recipe."""
    recipes = set(members["recipe"]) if "recipe" in members.columns else set()
    return f"{recipes.pop()} runs".replace("ticket runs", "tickets") if len(recipes) == 1 \
        else "runs"


def variant_curves_png(loaded, title: str = "", log_x: bool = True,
                       dense_label: Optional[str] = "dense runs") -> bytes:
    """Test (solid, +-1 std over seeds) and train (dashed) accuracy against step, one colour
    per cell of the sweep (its variant, e.g. grokking ticket / L1 / L2 norm-matched dense, or
    one pruning method each), as the paper's Fig. 5 and Table 1 compare them; the dense runs
    behind the tickets in grey (``dense_label`` None leaves them out). A member that stopped
    early holds its last value. Returns PNG bytes."""
    plt = pyplot()
    frame, cells = curves_with_cells(loaded.curves, loaded.trials)
    several = (frame.groupby(cells)["pruning_rate"].nunique().max() if cells
               else frame["pruning_rate"].nunique()) > 1
    keys = [*cells, "pruning_rate"] if several else cells
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    if dense_label and not loaded.base_curves.empty:
        band(ax, members_wide(loaded.base_curves, "test_acc"), "0.55", dense_label, log_x)
    groups = list(frame.groupby(keys, sort=False)) if keys else [((), frame)]
    colours = plt.get_cmap("tab10")
    for i, (key, part) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        label = (str(key[0]) if keys[:1] == ["variant"] and len(keys) == 1
                 else _cell_label(keys, key)) if keys else _runs_label(loaded.members)
        band(ax, members_wide(part, "test_acc"), colours(i % 10), label, log_x)
        band(ax, members_wide(part, "train_acc"), colours(i % 10), None, log_x, style="--")
    if log_x:
        ax.set_xscale("log")
    ax.set(xlabel="step", ylabel="accuracy (solid: test, mean +-1 std; dashed: train)",
           ylim=(-0.02, 1.02))
    ax.axhline(0.95, color="0.85", lw=0.8, zorder=0)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(wrapped(title, 90), fontsize=8)
    return png_bytes(fig, dpi=120)


def variant_panels_png(loaded, title: str = "", log_x: bool = True) -> bytes:
    """One panel per variant of the sweep (e.g. one task each, Fig. 2d-e): the dense runs behind
    its tickets (grey) against the tickets (colour), test accuracy solid (mean +-1 std over
    seeds) and train dashed. A regression's accuracy is R^2 (``grok_core.models``), so its
    panel shows R^2 from 0. Returns PNG bytes."""
    plt = pyplot()
    frame, cells = curves_with_cells(loaded.curves, loaded.trials)
    if "variant" not in cells:
        return variant_curves_png(loaded, title=title, log_x=log_x)
    base = loaded.base_curves
    if not base.empty and "trial" in loaded.base.columns:
        owner = loaded.base[["dense_key", "trial"]].drop_duplicates("dense_key")
        base = base.merge(owner.merge(loaded.trials[["trial", "variant"]], on="trial")
                          [["dense_key", "variant"]], on="dense_key")
    variants = list(dict.fromkeys(frame["variant"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(4.6 * len(variants), 3.9), squeeze=False)
    for ax, variant in zip(axes[0], variants):
        dense = base[base["variant"] == variant] if "variant" in base.columns else base.iloc[:0]
        if not dense.empty:
            band(ax, members_wide(dense, "test_acc"), "0.5", "dense", log_x)
            band(ax, members_wide(dense, "train_acc"), "0.5", None, log_x, style="--")
        ticket = frame[frame["variant"] == variant]
        band(ax, members_wide(ticket, "test_acc"), "tab:blue", "grokking ticket", log_x)
        band(ax, members_wide(ticket, "train_acc"), "tab:blue", None, log_x, style="--")
        if log_x:
            ax.set_xscale("log")
        ax.axhline(0.95, color="0.85", lw=0.8, zorder=0)
        ax.set(title=str(variant), xlabel="step", ylim=(-0.02, 1.02))
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("accuracy; R^2 for regression\n(solid: test, dashed: train)")
    if title:
        fig.suptitle(wrapped(title, 120), fontsize=8)
    return png_bytes(fig, dpi=120)


def _delay_text(label: str, members: pd.DataFrame) -> str:
    """'label: t_mem 85 -> t_gen 19110 (tau_grok 225)', medians over the members."""
    t_mem, t_gen = members["t_mem"].astype(float).median(), median_t_gen(members)
    tau = "-" if t_gen == float("inf") or t_mem != t_mem else f"{t_gen / t_mem:.3g}"
    shown = "never" if t_gen == float("inf") else f"{t_gen:.0f}"
    memorised = "never" if t_mem != t_mem else f"{t_mem:.0f}"
    return f"{label}: t_mem {memorised} -> t_gen {shown} (t_gen / t_mem {tau})"


def dense_vs_ticket_png(loaded, title: str = "", log_x: bool = True) -> bytes:
    """Fig. 1 (left) of the paper: train (dashed) and test (solid) accuracy against step of the
    dense runs (grey) and their grokking tickets (a colour per pruning rate), mean +-1 std over
    seeds, with each one's median t_mem -> t_gen written on the figure (the delay a ticket
    removes). Returns PNG bytes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    notes = []
    if not loaded.base_curves.empty:
        band(ax, members_wide(loaded.base_curves, "test_acc"), "0.45", "dense test", log_x)
        band(ax, members_wide(loaded.base_curves, "train_acc"), "0.45", "dense train", log_x,
             style="--")
        notes.append(_delay_text("dense", loaded.base))
    colours = plt.get_cmap("tab10")
    for i, (rate, part) in enumerate(loaded.curves.groupby("pruning_rate")):
        colour = colours((i + 0) % 10) if loaded.curves["pruning_rate"].nunique() > 1 \
            else "tab:blue"
        band(ax, members_wide(part, "test_acc"), colour, f"ticket k={rate:g} test", log_x)
        band(ax, members_wide(part, "train_acc"), colour, f"ticket k={rate:g} train", log_x,
             style="--")
        notes.append(_delay_text(f"ticket k={rate:g}",
                                 loaded.members[loaded.members["pruning_rate"] == rate]))
    if log_x:
        ax.set_xscale("log")
    ax.axhline(0.95, color="0.85", lw=0.8, zorder=0)
    ax.set(xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.legend(fontsize=7, loc="center right")
    ax.text(0.01, 0.99, "medians over seeds\n" + "\n".join(notes), transform=ax.transAxes,
            va="top", fontsize=7, family="monospace",
            bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.9})
    if title:
        ax.set_title(wrapped(title, 90), fontsize=8)
    return png_bytes(fig, dpi=120)
