"""Structure over training (Sec. 5.1, 5.3; Fig. 6-8): norms, the Jaccard distance between the
magnitude masks of consecutive checkpoints of a dense run (per layer and overall), and the
Fourier entropy of the (masked) effective input weights.

    from grok_core.config import ExperimentConfig
    from grok_core.store import ArtifactStore
    import analysis.structure as structure
    table = structure.dense_structure(ArtifactStore("grok_sweeps"), ExperimentConfig(), seed=0)

    loaded = analysis.load("grok_sweeps/structure")    # a sweep of the structure study
    structure.sweep_structure(loaded)                   # every dense run behind it, per checkpoint
    structure.summary(loaded)                           # Jaccard peak and entropy drop per seed

Dense runs give the Jaccard distance from their checkpoints; the Fourier entropy of a ticket
(and of a dense run) over training comes from its curves when it trained with
``train.fourier_entropy`` set (the structure study does), since a trial keeps no weights.
"""
from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from grok_core.config import ConfigError, ExperimentConfig

from .plotting import band, png_bytes, pyplot, wrapped
from .results import members_wide, sweep_store


def dense_structure(store, config: ExperimentConfig, seed: int, pruning_rate: float = 0.6,
                    scope: str = "global", fourier_variant: str = "shannon") -> pd.DataFrame:
    """One row per kept checkpoint of the dense run of ``config`` (its ``dense_base`` for a
    ticket config) and ``seed``: see ``run_structure``."""
    dense = config if config.recipe == "dense" else config.dense_base()
    return run_structure(store, dense.dense_key(), seed, pruning_rate, scope, fourier_variant,
                         config=dense)


def run_structure(store, dense_key: str, seed: int, pruning_rate: float = 0.6,
                  scope: str = "global", fourier_variant: str = "shannon",
                  config: Optional[ExperimentConfig] = None) -> pd.DataFrame:
    """One row per kept checkpoint of the stored dense run ``dense_key`` / ``seed``: step, L1
    and L2 norm of all parameters, the Jaccard distance of the magnitude mask at
    ``pruning_rate`` to the previous checkpoint's (``jaccard``, and ``jaccard.<tensor>`` per
    prunable tensor; NaN at the first checkpoint) and, for the MLP, the Fourier entropy of the
    effective input weights (W_emb W_in)^T (Shannon; the authors' variant with
    ``fourier_variant='authors'``). ConfigError if the store lacks the run."""
    # the engine (torch) only when a dense run's weights are read: loading the analysis
    # never waits for it
    from grok_core.metrics import fourier_entropy, jaccard_distance
    from grok_core.pruning import magnitude_mask
    from grok_core.recipes import global_norm, model_for

    if not store.has_dense(dense_key, seed):
        raise ConfigError(f"no finished dense run {dense_key} seed {seed} in {store.display()}")
    if config is None:
        config = ExperimentConfig.from_dict(store.run_config(dense_key))
    model = model_for(config)
    rows: list[dict[str, Any]] = []
    previous = None
    for step in store.dense_summary(dense_key, seed)["checkpoint_steps"]:
        params = store.load_checkpoint(dense_key, seed, step)
        prunable = {n: params[n] for n in model.prunable}
        mask = magnitude_mask(prunable, pruning_rate, scope)
        row: dict[str, Any] = {"step": step, "l1": global_norm(params, "l1"),
                               "l2": global_norm(params, "l2")}
        row["jaccard"] = float("nan") if previous is None else jaccard_distance(previous, mask)
        for name in model.prunable:
            row[f"jaccard.{name}"] = (float("nan") if previous is None
                                      else jaccard_distance(previous[name], mask[name]))
        if hasattr(model, "effective_input_weights"):
            weights = model.effective_input_weights({n: t[None] for n, t in params.items()})[0]
            row["fourier_entropy"] = fourier_entropy(weights, fourier_variant)
        rows.append(row)
        previous = mask
    return pd.DataFrame(rows).assign(seed=seed, dense_key=dense_key, pruning_rate=pruning_rate)


def _rate(loaded, pruning_rate: Optional[float]) -> float:
    if pruning_rate is not None:
        return pruning_rate
    rates = sorted(set(loaded.members["pruning_rate"])) if not loaded.members.empty else []
    return rates[0] if rates else 0.6


def sweep_structure(loaded, pruning_rate: Optional[float] = None) -> pd.DataFrame:
    """``run_structure`` of every dense run behind the tickets of a loaded sweep (from the
    artifact store beside it), at the tickets' pruning rate unless given; runs the store no
    longer holds are left out."""
    if loaded.base.empty:
        return pd.DataFrame()
    store = sweep_store(loaded.path)
    rate = _rate(loaded, pruning_rate)
    frames = [run_structure(store, key, int(seed), rate)
              for key, seed in zip(loaded.base["dense_key"], loaded.base["seed"])
              if store.has_dense(key, int(seed))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def half_drop_step(curve: pd.DataFrame, column: str = "fourier_entropy") -> Optional[int]:
    """The first step at which ``column`` has fallen half way from its first value to its
    lowest (None without such a column or values)."""
    if column not in curve.columns or curve[column].isna().all():
        return None
    values = curve.sort_values("step").dropna(subset=[column])
    first, lowest = values[column].iloc[0], values[column].min()
    if not first > lowest:
        return None
    reached = values[values[column] <= first - (first - lowest) / 2]
    return int(reached["step"].iloc[0])


# Phases of a dense run by its test accuracy at a checkpoint (Fig. 7 reads the Jaccard distance
# against them): memorised (below 0.1), transition (0.1 up to the 0.95 threshold), generalised.
TRANSITION_START = 0.1
# Checkpoint intervals left out of the memorised phase: the weights leave their initial values
# there and every mask moves far, whatever happens later.
EARLY_INTERVALS = 2


def jaccard_phases(structure: pd.DataFrame, dense_curve: pd.DataFrame,
                   threshold: float = 0.95) -> dict[str, Optional[float]]:
    """Mean Jaccard distance between consecutive checkpoints' masks of one dense run in each
    phase (``TRANSITION_START``): ``jaccard_memorised`` (after the first ``EARLY_INTERVALS``
    intervals), ``jaccard_transition``, ``jaccard_generalised``; None for a phase without
    checkpoints."""
    accuracy = dense_curve.set_index("step")["test_acc"].sort_index()
    rows = structure.dropna(subset=["jaccard"]).sort_values("step").iloc[EARLY_INTERVALS:]
    at = [float(accuracy.loc[:step].iloc[-1]) for step in rows["step"]]
    phase = ["memorised" if a < TRANSITION_START else "transition" if a < threshold
             else "generalised" for a in at]
    means = rows.assign(phase=phase).groupby("phase")["jaccard"].mean()
    return {f"jaccard_{name}": (float(means[name]) if name in means else None)
            for name in ("memorised", "transition", "generalised")}


def summary(loaded, pruning_rate: Optional[float] = None) -> pd.DataFrame:
    """One row per seed of a structure sweep: the dense run's t_gen; the checkpoint step where
    its Jaccard distance peaks (``jaccard_peak_step``, the end of the window measured) and its
    mean in each phase (``jaccard_phases``); the step where the Fourier entropy has fallen
    half way to its lowest, for the dense run and for the ticket
    (``entropy_half_drop_dense`` / ``_ticket``); the ticket's t_gen."""
    structure = sweep_structure(loaded, pruning_rate)
    rows = []
    for _, base in loaded.base.iterrows():
        seed = int(base["seed"])
        row: dict[str, Any] = {"seed": seed, "dense_t_gen": base.get("t_gen")}
        own = structure[structure["seed"] == seed] if not structure.empty else structure
        if not own.empty and own["jaccard"].notna().any():
            peak = own.loc[own["jaccard"].idxmax()]
            row.update(jaccard_peak_step=int(peak["step"]), jaccard_peak=float(peak["jaccard"]))
        dense_curve = (loaded.base_curves[loaded.base_curves["seed"] == seed]
                       if not loaded.base_curves.empty else pd.DataFrame())
        if not own.empty and not dense_curve.empty:
            row.update(jaccard_phases(own, dense_curve))
        row["entropy_half_drop_dense"] = half_drop_step(dense_curve)
        ticket = loaded.curves[loaded.curves["seed"] == seed] if not loaded.curves.empty else None
        row["entropy_half_drop_ticket"] = None if ticket is None else half_drop_step(ticket)
        tickets = loaded.members[loaded.members["seed"] == seed] if not loaded.members.empty \
            else pd.DataFrame()
        row["ticket_t_gen"] = tickets["t_gen"].iloc[0] if not tickets.empty else None
        rows.append(row)
    return pd.DataFrame(rows)


def structure_png(loaded, title: str = "") -> bytes:
    """Fig. 6-8 of a structure sweep in four panels, mean +-1 std over seeds: L1 and L2 norm
    of the dense runs and the tickets over training (Fig. 6); the dense runs' Jaccard distance
    between the masks of consecutive checkpoints with their test accuracy (Fig. 7); the
    Fourier entropy of dense runs and tickets with their test accuracy (Fig. 8)."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    (norm1, norm2), (jaccard, entropy) = axes
    runs = [("dense runs", loaded.base_curves, "0.45"), ("grokking tickets", loaded.curves,
                                                          "tab:red")]
    for ax, column, name in ((norm1, "l1_norm", "L1"), (norm2, "l2_norm", "L2")):
        for label, curves, colour in runs:
            if not curves.empty and column in curves.columns:
                band(ax, members_wide(curves, column), colour, label, True)
        ax.set(xscale="log", xlabel="step", ylabel=f"{name} norm (Fig. 6)")
        ax.legend(fontsize=7)
    table = sweep_structure(loaded)
    if not table.empty:
        wide = table.pivot_table(index="step", columns="seed", values="jaccard")
        band(jaccard, wide.dropna(how="all"), "tab:blue", "Jaccard distance to the previous "
             "checkpoint's mask", False)
    jaccard.set(xlabel="dense step", ylabel="Jaccard distance (Fig. 7)")
    accuracy = jaccard.twinx()
    if not loaded.base_curves.empty:
        band(accuracy, members_wide(loaded.base_curves, "test_acc"), "0.6",
             "dense test accuracy", False, style="--")
    accuracy.set(ylabel="dense test accuracy (dashed)", ylim=(-0.02, 1.02))
    jaccard.legend(fontsize=7, loc="upper right")
    twin = entropy.twinx()
    for label, curves, colour in runs:
        if not curves.empty and "fourier_entropy" in curves.columns:
            band(entropy, members_wide(curves, "fourier_entropy"), colour, label, True)
            band(twin, members_wide(curves, "test_acc"), colour, None, True, style="--")
    entropy.set(xscale="log", xlabel="step", ylabel="Fourier entropy (Fig. 8)")
    twin.set(ylabel="test accuracy (dashed)", ylim=(-0.02, 1.02))
    entropy.legend(fontsize=7, loc="center left")
    if title:
        fig.suptitle(wrapped(title, 140), fontsize=9)
    return png_bytes(fig, dpi=110)
