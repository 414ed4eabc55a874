"""Recipe ``ticket``: grokking (or non-grokking) lottery tickets.

Each seed's dense run (trained first only if the store lacks it) gives a mask from the
``prune.method`` scores of theta_t at ``prune.step`` for every pruning rate
(``grok_core.pruning``); the kept weights rewind to theta_0 and all (seed, rate) members train
as one cohort. With ``prune.step=0`` the mask comes from theta_0 itself (pruning at init).
"""
from __future__ import annotations

from typing import Any, Sequence

from ..config import ConfigError, ExperimentConfig
from ..pruning import DATA_FREE_METHODS, prune
from ..store import ArtifactStore
from ..tasks import build_dataset
from ..training import MemberSpec
from .base import Recipe, model_for


def resolve_prune_step(config: ExperimentConfig, summary: dict[str, Any]) -> int:
    """The dense step whose weights give the mask; ConfigError if no checkpoint exists there."""
    step = summary["steps_run"] if config.prune.step == "final" else int(config.prune.step)
    if step not in summary["checkpoint_steps"]:
        raise ConfigError(
            f"prune.step: {step} is beyond or between the dense run's checkpoints "
            f"(steps {summary['checkpoint_steps'][0]}..{summary['steps_run']}, every "
            f"{config.dense_base().train.checkpoint_every})")
    return step


def generalised_by(summary: dict[str, Any], step: int) -> bool:
    """Whether the dense run of ``summary`` had generalised (t_gen reached) by ``step``: its
    mask at that step makes a grokking ticket; otherwise a non-grokking one."""
    t_gen = summary.get("t_gen")
    return t_gen is not None and t_gen == t_gen and t_gen <= step


def ticket_members(config: ExperimentConfig, seeds: Sequence[int], rates: Sequence[float],
                   store: ArtifactStore) -> list[MemberSpec]:
    """One member per (seed, rate): theta_0 of the seed's dense run, masked by the scores of
    ``prune.method`` on its theta_t (data-based methods score on the training split; needs the
    dense runs in the store), or on theta_0 itself at ``prune.step=0`` (no dense run)."""
    key = config.dense_key()
    model = model_for(config)
    method = config.prune.method
    needs_data = method not in DATA_FREE_METHODS or (
        method == "synflow" and config.prune.synflow_input == "batch")
    train = build_dataset(config.task).train if needs_data else None
    inputs, labels = (train.inputs, train.labels) if train is not None else (None, None)
    members = []
    for seed in seeds:
        if config.prune.at_init:  # pruning at initialisation: theta_0 is all it needs
            step, generalised, t_gen = 0, None, None
            theta_0 = theta_t = model.init_member(seed)
        else:
            summary = store.dense_summary(key, seed)
            step = resolve_prune_step(config, summary)
            generalised, t_gen = generalised_by(summary, step), summary.get("t_gen")
            theta_0 = store.load_checkpoint(key, seed, 0)
            theta_t = store.load_checkpoint(key, seed, step)
        for rate in rates:
            mask = prune(method, model, theta_t, rate, inputs, labels, config.prune.scope,
                         seed=seed,
                         synflow_ones=config.prune.synflow_input == "ones")
            members.append(MemberSpec(seed=seed, init=theta_0, mask=mask, labels={
                "pruning_rate": float(rate), "prune_step": step,
                "base_t_gen": t_gen, "base_generalised": generalised}))
    return members


class Ticket(Recipe):
    """theta_0 masked by the scores of a dense run's theta_t (module docstring)."""

    name = "ticket"
    description = "theta_0 masked by the prune.method scores of the dense run at prune.step"

    def members(self, config, seeds, rates, store):
        return ticket_members(config, seeds, rates, store)


TICKET = Ticket()
