"""What every recipe shares: the ``Recipe`` interface, its result, and the member tables.

A recipe says which members a cohort trains (seeds x pruning rates, their initial weights and
masks) and from which dense runs; ``grok_core.recipes.run_recipe`` is the one function that
trains any of them, for ``grok train`` and for a sweep's trial alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pandas as pd
import torch

from ..config import RECIPE_TRAITS, ExperimentConfig, RecipeTraits
from ..models import CohortModel, Params, build_model
from ..store import ArtifactStore
from ..tasks import task_shape
from ..training import Callbacks, CohortResult, MemberSpec, TrainingState, listens_to_eval

# the leading columns of a member table (grok train's members.parquet, a trial's final report)
MEMBER_COLUMNS = ["seed", "pruning_rate", "t_mem", "t_gen", "tau_grok",
                  "final_train_acc", "final_test_acc", "steps_run", "base_generalised"]
CURVE_LABELS = ("pruning_rate", "prune_step", "norm_ratio")  # member labels repeated on every curve row


@dataclass
class ExperimentResult:
    """Outcome of one recipe: a row per member, their curves, and (tickets) the dense runs."""

    recipe: str
    dense_key: str
    members: pd.DataFrame
    curves: pd.DataFrame
    base_members: Optional[pd.DataFrame] = None
    base_curves: Optional[pd.DataFrame] = None
    notes: list[str] = field(default_factory=list)


class Recipe:
    """One experiment recipe. A subclass names itself and builds its members; recipes that
    train dense runs from scratch (``trains_dense_runs``) keep them in the artifact store."""

    name: str = ""
    description: str = ""
    trains_dense_runs = False  # True only for ``dense``: members are fresh networks

    @property
    def traits(self) -> RecipeTraits:
        """What the configs and the loop know of this recipe (``grok_core.config.names``)."""
        return RECIPE_TRAITS[self.name]

    def members(self, config: ExperimentConfig, seeds: Sequence[int], rates: Sequence[float],
                store: ArtifactStore) -> list[MemberSpec]:
        """The cohort's members (the dense runs they start from are already in ``store``)."""
        raise NotImplementedError

    def start_description(self, members: Sequence[MemberSpec]) -> str:
        """Where the members' weights come from, for the log line before training."""
        return f"mask from dense step {members[0].labels['prune_step']}"


class CallbackChain(Callbacks):
    """Several ``Callbacks`` heard in order (e.g. the store's checkpoint writer, then Tune's
    reporter)."""

    def __init__(self, *callbacks: Optional[Callbacks]) -> None:
        self.callbacks = [c for c in callbacks if c is not None]
        # a loop that sees no on_eval listener skips syncing evaluations to the host
        if any(listens_to_eval(c) for c in self.callbacks):
            self.on_eval = self._on_eval  # type: ignore[method-assign]

    def on_checkpoint(self, step: int, params: Params, members: Sequence[int]) -> None:
        for callback in self.callbacks:
            callback.on_checkpoint(step, params, members)

    def _on_eval(self, step: int, rows: Mapping[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_eval(step, rows)

    def on_state(self, state: TrainingState) -> None:
        for callback in self.callbacks:
            callback.on_state(state)


def model_for(config: ExperimentConfig) -> CohortModel:
    """The model a config describes (its task's input shape, its loss)."""
    kind, size, classes = task_shape(config.task)
    return build_model(config.model, size, classes, kind, config.loss, config.task.name)


def global_norm(tensors: Mapping[str, torch.Tensor], norm: str) -> float:
    """The L1 or L2 norm of all ``tensors`` together (in float64)."""
    flat = torch.cat([t.detach().double().reshape(-1) for t in tensors.values()])
    return float(flat.abs().sum() if norm == "l1" else flat.pow(2).sum().sqrt())


def ordered_members(frame: pd.DataFrame) -> pd.DataFrame:
    """A member table with ``MEMBER_COLUMNS`` first."""
    first = [c for c in MEMBER_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def member_tables(config: ExperimentConfig, members: Sequence[MemberSpec],
                  result: CohortResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per member (summary, recipe, dense key) and curves labelled by seed and rate."""
    rows = pd.DataFrame([{**s, "recipe": config.recipe, "dense_key": config.dense_key()}
                         for s in result.summaries]).drop(columns="member")
    if "pruning_rate" not in rows.columns:
        rows["pruning_rate"] = 0.0
    labels = pd.DataFrame([{"member": k, "seed": m.seed, "pruning_rate": 0.0,
                            **{c: v for c, v in m.labels.items() if c in CURVE_LABELS}}
                           for k, m in enumerate(members)])
    curves = result.curves.merge(labels, on="member").drop(columns="member")
    return ordered_members(rows), curves


def member_slice_of(result: CohortResult, members: Sequence[int]) -> CohortResult:
    """The part of ``result`` that belongs to the cohort indices ``members``, numbered
    0, 1, ... in that order, as if they had trained alone (members never interact)."""
    index = {k: position for position, k in enumerate(members)}
    summaries = [{**result.summaries[k], "member": index[k]} for k in members]
    curves = result.curves[result.curves["member"].isin(list(index))].copy()
    curves["member"] = curves["member"].map(index)
    final = {name: tensor[list(members)] for name, tensor in result.final_params.items()}
    return CohortResult(summaries, curves.reset_index(drop=True), final,
                        max(s["steps_run"] for s in summaries))


def flagged_once_per_seed(members: Sequence[MemberSpec], label: str) -> list[MemberSpec]:
    """The first member of each seed whose ``label`` is False (None, unknown, is not)."""
    first: dict[int, MemberSpec] = {}
    for member in members:
        if member.labels.get(label) is False:
            first.setdefault(member.seed, member)
    return list(first.values())


def non_grokking_warnings(members: Sequence[MemberSpec]) -> list[str]:
    """One line per seed whose ticket mask comes from a dense run that had not yet generalised
    at the mask step (so the ticket is a non-grokking ticket; None: pruned at initialisation,
    no dense run involved)."""
    lines = []
    for member in flagged_once_per_seed(members, "base_generalised"):
        t_gen = member.labels.get("base_t_gen")
        when = (f"it generalised only at step {t_gen}" if t_gen is not None and t_gen == t_gen
                else "it never reached the accuracy threshold")
        lines.append(f"warning: seed {member.seed}: the mask comes from dense step "
                     f"{member.labels['prune_step']}, before its dense run had generalised "
                     f"({when}): a non-grokking ticket (column base_generalised=False)")
    return lines
