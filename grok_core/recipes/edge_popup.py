"""Recipe ``edge_popup``: learn which weights of theta_mem to keep (Sec. 5.2, Table 1).

Members start from each seed's dense weights at ``edge_popup.start_step`` (theta_mem) and learn
scores (``grok_core.edge_popup``), with or without training the weights; variant ``wd`` trains
the weights plainly.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd

from ..config import ConfigError, ExperimentConfig
from ..edge_popup import initial_scores
from ..store import ArtifactStore
from ..training import MemberSpec
from .base import Recipe, model_for


def edge_popup_members(config: ExperimentConfig, seeds: Sequence[int], rates: Sequence[float],
                       store: ArtifactStore) -> list[MemberSpec]:
    """Members that start from theta_mem, each seed's dense run at ``edge_popup.start_step``
    (needs the dense runs in the store): for the ``ep`` / ``ep_wd`` variants one per (seed,
    rate) with fresh kaiming-uniform scores (``grok_core.edge_popup``); for ``wd`` (ordinary
    training, no scores and no mask) one per seed."""
    key = config.dense_key()
    model = model_for(config)
    step = config.edge_popup.start_step
    learned = config.learns_masks  # ep / ep_wd learn scores; wd trains plain weights
    members = []
    for seed in seeds:
        summary = store.dense_summary(key, seed)
        if step not in summary["checkpoint_steps"]:
            raise ConfigError(f"edge_popup.start_step: the dense run {key} seed {seed} kept no "
                              f"checkpoint at step {step} (it kept "
                              f"{', '.join(map(str, summary['checkpoint_steps']))})")
        theta_mem = store.load_checkpoint(key, seed, step)
        start_acc = _test_acc_at(store.dense_curves(key, seed), step)
        for rate in (rates if learned else [0.0]):
            init = {**theta_mem, **initial_scores(model, seed)} if learned else theta_mem
            members.append(MemberSpec(seed=seed, init=init, labels={
                "pruning_rate": float(rate), "prune_step": step,
                "base_t_gen": summary.get("t_gen"), "base_generalised": None,
                "start_test_acc": start_acc}))
    return members


def _test_acc_at(curves: pd.DataFrame, step: int) -> Optional[float]:
    """The dense run's test accuracy at its evaluation nearest ``step`` (at or before it)."""
    before = curves[curves["step"] <= step]
    return None if before.empty else float(before["test_acc"].iloc[-1])


class EdgePopup(Recipe):
    """Scores learned over theta_mem (module docstring)."""

    name = "edge_popup"
    description = "edge-popup scores (and optionally weights) trained from theta_mem"

    def members(self, config, seeds, rates, store):
        return edge_popup_members(config, seeds, rates, store)

    def start_description(self, members):
        return f"weights of dense step {members[0].labels['prune_step']}"


EDGE_POPUP = EdgePopup()
