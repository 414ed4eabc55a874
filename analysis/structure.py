"""Structure of a dense run over training (Sec. 5.1, 5.3; Fig. 6-8), from its stored
checkpoints: norms, the Jaccard distance between the magnitude masks of consecutive checkpoints
(per layer and overall), and the Fourier entropy of the effective input weights.

    from grok_core.config import ExperimentConfig
    from grok_core.store import ArtifactStore
    import analysis.structure as structure
    config = ExperimentConfig()                       # the dense run's settings
    table = structure.dense_structure(ArtifactStore("grok_sweeps"), config, seed=0)

Tickets' Fourier entropy over training needs their weights at many steps; trials do not keep
them yet (issue 9 continues there).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from grok_core.config import ConfigError, ExperimentConfig


def dense_structure(store, config: ExperimentConfig, seed: int, pruning_rate: float = 0.6,
                    scope: str = "global", fourier_variant: str = "shannon") -> pd.DataFrame:
    """One row per kept checkpoint of the dense run of ``config`` (its ``dense_base`` for a
    ticket config) and ``seed``: step, L1 and L2 norm of all parameters, the Jaccard distance of
    the magnitude mask at ``pruning_rate`` to the previous checkpoint's (``jaccard``, and
    ``jaccard.<tensor>`` per prunable tensor; NaN at the first checkpoint) and, for the MLP,
    the Fourier entropy of the effective input weights (W_emb W_in)^T (Shannon; the authors'
    variant with ``fourier_variant='authors'``). ConfigError if the store lacks the run."""
    from grok_core.metrics import fourier_entropy, jaccard_distance
    from grok_core.pruning import magnitude_mask
    from grok_core.recipes import global_norm, model_for

    dense = config if config.recipe == "dense" else config.dense_base()
    key = dense.dense_key()
    if not store.has_dense(key, seed):
        raise ConfigError(f"no finished dense run {key} seed {seed} in {store.display()}")
    model = model_for(dense)
    rows: list[dict[str, Any]] = []
    previous = None
    for step in store.dense_summary(key, seed)["checkpoint_steps"]:
        params = store.load_checkpoint(key, seed, step)
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
    return pd.DataFrame(rows).assign(seed=seed, dense_key=key, pruning_rate=pruning_rate)
