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
from .base import Recipe, flagged_once_per_seed, model_for

# theta_mem must be a memorising solution (Sec. 5.2): it fits its training split (train accuracy
# >= train.threshold) while its test accuracy is still below this. A start that has generalised
# already (seed 4 at lr 0.01 had test accuracy 0.91 at step 1000) makes Table 1's comparison
# about nothing: each method only has to keep what the start knows.
MEMORISING_TEST_ACC = 0.5


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
        start_train, start_acc = _accuracies_at(store.dense_curves(key, seed), step)
        memorising = (None if start_acc is None else
                      start_train >= config.train.threshold and start_acc < MEMORISING_TEST_ACC)
        for rate in (rates if learned else [0.0]):
            init = {**theta_mem, **initial_scores(model, seed)} if learned else theta_mem
            members.append(MemberSpec(seed=seed, init=init, labels={
                "pruning_rate": float(rate), "prune_step": step,
                "base_t_gen": summary.get("t_gen"), "base_generalised": None,
                "start_train_acc": start_train, "start_test_acc": start_acc,
                "start_memorising": memorising}))
    return members


def _accuracies_at(curves: pd.DataFrame, step: int) -> tuple[Optional[float], Optional[float]]:
    """The dense run's train and test accuracy at its evaluation nearest ``step`` (at or
    before it)."""
    before = curves[curves["step"] <= step]
    if before.empty:
        return None, None
    return float(before["train_acc"].iloc[-1]), float(before["test_acc"].iloc[-1])


def memorising_start_warnings(members: Sequence[MemberSpec]) -> list[str]:
    """One line per seed whose theta_mem is no memorising start (``MEMORISING_TEST_ACC``)."""
    return [f"warning: seed {member.seed}: theta_mem (dense step "
            f"{member.labels['prune_step']}) is no memorising start: train accuracy "
            f"{member.labels['start_train_acc']:.3f}, test accuracy "
            f"{member.labels['start_test_acc']:.3f} (a memorising start fits its training "
            f"split and stays below {MEMORISING_TEST_ACC} on the test split; column "
            "start_memorising=False)"
            for member in flagged_once_per_seed(members, "start_memorising")]


class EdgePopup(Recipe):
    """Scores learned over theta_mem (module docstring)."""

    name = "edge_popup"
    description = "edge-popup scores (and optionally weights) trained from theta_mem"

    def members(self, config, seeds, rates, store):
        return edge_popup_members(config, seeds, rates, store)

    def start_description(self, members):
        return f"weights of dense step {members[0].labels['prune_step']}"


EDGE_POPUP = EdgePopup()
