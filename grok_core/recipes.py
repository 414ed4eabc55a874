"""Experiment recipes: what to train, from which weights, with which masks.

``dense``  trains randomly initialised networks and keeps each run (theta_0, checkpoints, curves,
           summary) in the artifact store, keyed by config; a finished run is never retrained.
``ticket`` takes each seed's dense run (trained first only if the store lacks it), builds a
           mask from the ``prune.method`` scores of theta_t at ``prune.step`` for every pruning
           rate (``grok_core.pruning``), rewinds the kept
           weights to theta_0, and trains all (seed, rate) members as one cohort.
``norm_control`` trains the dense theta_0 rescaled to each such ticket's L1 or L2 norm.
``edge_popup`` starts from each seed's dense weights at ``edge_popup.start_step`` (theta_mem)
           and learns which weights to keep (``grok_core.edge_popup``), with or without
           training the weights, or trains them plainly (variant ``wd``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import pandas as pd
import torch

from .config import ConfigError, ExperimentConfig, check_pruning_rate
from .models import CohortModel, Params, build_model, member_slice
from .pruning import DATA_FREE_METHODS, prune
from .store import ArtifactStore
from .tasks import build_dataset, task_shape
from .training import Callbacks, CohortResult, MemberSpec, train_cohort

MEMBER_COLUMNS = ["seed", "pruning_rate", "t_mem", "t_gen", "tau_grok",
                  "final_train_acc", "final_test_acc", "steps_run", "base_generalised"]
CURVE_LABELS = ("pruning_rate", "prune_step", "norm_ratio")  # member labels repeated on every curve row
Log = Callable[[str], None]


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


def model_for(config: ExperimentConfig) -> CohortModel:
    """The model a config describes (its task's input shape, its loss)."""
    kind, size, classes = task_shape(config.task)
    return build_model(config.model, size, classes, kind, config.loss, config.task.name)


class DenseCheckpointsToStore(Callbacks):
    """Writes each dense member's theta_t to the store at every checkpoint step."""

    def __init__(self, store: ArtifactStore, key: str, seeds: Sequence[int],
                 on_eval: Optional[Callable[[int, Any], None]] = None) -> None:
        self.store, self.key, self.seeds = store, key, list(seeds)
        if on_eval is not None:  # only then: listening to evaluations syncs a GPU
            self.on_eval = on_eval  # type: ignore[method-assign]

    def on_checkpoint(self, step: int, params: Params, members: Sequence[int]) -> None:
        for position, k in enumerate(members):
            self.store.save_checkpoint(self.key, self.seeds[k], step,
                                       member_slice(params, position))


def dense_checkpoint_steps(config: ExperimentConfig, steps_run: int) -> list[int]:
    """The steps at which a dense run that stopped at ``steps_run`` kept theta_t."""
    return list(range(0, steps_run, config.train.checkpoint_every)) + [steps_run]


def store_dense_results(store: ArtifactStore, config: ExperimentConfig, seeds: Sequence[int],
                        result: CohortResult) -> None:
    """Curves, then the summary (which marks the run complete), of each seed of a dense cohort
    whose checkpoints ``DenseCheckpointsToStore`` already wrote."""
    key = config.dense_key()
    store.write_json(config.to_dict(), "artifacts", key, "config.json")
    for k, seed in enumerate(seeds):
        curves = result.curves[result.curves["member"] == k].drop(columns="member")
        store.write_parquet(curves.reset_index(drop=True), *store.run_parts(key, seed),
                            "curves.parquet")
        summary = {**result.summaries[k], "pruning_rate": 0.0, "dense_key": key,
                   "checkpoint_steps": dense_checkpoint_steps(
                       config, result.summaries[k]["steps_run"])}
        summary.pop("member")
        store.write_json(summary, *store.run_parts(key, seed), "summary.json")  # last


def ensure_dense(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore, *,
                 device: Any = "cpu", progress: bool = False, log: Log = lambda _: None,
                 on_eval: Optional[Callable[[int, Any], None]] = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make sure the store holds the dense run of ``config`` for every seed; train the missing
    ones as one cohort (``on_eval(step, rows)`` hears each evaluation, e.g. to show progress).
    Returns (one row per seed, curves), read back from the store."""
    if config.recipe != "dense":
        raise ValueError("ensure_dense needs a dense config")
    key = config.dense_key()
    missing = [seed for seed in seeds if not store.has_dense(key, seed)]
    for seed in seeds:
        if seed not in missing:
            log(f"dense run {key} seed {seed}: reused from {store.display(*store.run_parts(key, seed))}")
    if missing:
        log(f"dense run {key} seeds {','.join(map(str, missing))}: training "
            f"({config.train.steps} steps) -> {store.display('artifacts', key)}")
        result = train_cohort(config, [MemberSpec(seed=s) for s in missing], device=device,
                              progress=progress,
                              callbacks=DenseCheckpointsToStore(store, key, missing, on_eval),
                              desc=f"dense seeds {','.join(map(str, missing))}")
        store_dense_results(store, config, missing, result)
    rows, curves = [], []
    for seed in seeds:
        summary = store.dense_summary(key, seed)
        rows.append({**{k: v for k, v in summary.items() if k != "checkpoint_steps"},
                     "recipe": "dense", "trained": seed in missing})
        curves.append(store.dense_curves(key, seed).assign(seed=seed, pruning_rate=0.0))
    return _ordered(pd.DataFrame(rows)), pd.concat(curves, ignore_index=True)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    first = [c for c in MEMBER_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def run_dense(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore, *,
              device: Any = "cpu", progress: bool = False, log: Log = lambda _: None,
              rates: Optional[Sequence[float]] = None) -> ExperimentResult:
    """Dense runs for ``seeds`` (trained if the store lacks them)."""
    if rates:
        raise ConfigError("rates: a dense run has no pruning rate; use the ticket recipe")
    members, curves = ensure_dense(config, seeds, store, device=device, progress=progress, log=log)
    return ExperimentResult("dense", config.dense_key(), members, curves)


def resolve_prune_step(config: ExperimentConfig, summary: dict[str, Any]) -> int:
    """The dense step whose weights give the mask; ConfigError if no checkpoint exists there."""
    step = summary["steps_run"] if config.prune.step == "final" else int(config.prune.step)
    if step not in summary["checkpoint_steps"]:
        raise ConfigError(
            f"prune.step: {step} is beyond or between the dense run's checkpoints "
            f"(steps {summary['checkpoint_steps'][0]}..{summary['steps_run']}, every "
            f"{config.dense_base().train.checkpoint_every})")
    return step


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


def global_norm(tensors: Mapping[str, torch.Tensor], norm: str) -> float:
    """The L1 or L2 norm of all ``tensors`` together (in float64)."""
    flat = torch.cat([t.detach().double().reshape(-1) for t in tensors.values()])
    return float(flat.abs().sum() if norm == "l1" else flat.pow(2).sum().sqrt())


def norm_control_members(config: ExperimentConfig, seeds: Sequence[int],
                         rates: Sequence[float], store: ArtifactStore) -> list[MemberSpec]:
    """The norm-matched dense controls of the tickets ``ticket_members`` would build: for each
    (seed, rate), the dense theta_0 with its prunable tensors scaled by
    r = ||theta_0 * m|| / ||theta_0|| (``norm_control.norm``: L1 or L2 over the prunable
    tensors), so its initial norm equals the ticket's exactly; no mask."""
    norm = config.norm_control.norm
    prunable = model_for(config).prunable
    controls = []
    for ticket in ticket_members(config, seeds, rates, store):
        theta_0 = {n: ticket.init[n] for n in prunable}
        kept = {n: ticket.init[n] * ticket.mask[n] for n in prunable}
        ratio = global_norm(kept, norm) / global_norm(theta_0, norm)
        init = {n: (t * ratio if n in prunable else t.clone()) for n, t in ticket.init.items()}
        controls.append(MemberSpec(seed=ticket.seed, init=init, mask=None,
                                   labels={**ticket.labels, "norm_ratio": ratio}))
    return controls


def edge_popup_members(config: ExperimentConfig, seeds: Sequence[int], rates: Sequence[float],
                       store: ArtifactStore) -> list[MemberSpec]:
    """Members that start from theta_mem, each seed's dense run at ``edge_popup.start_step``
    (needs the dense runs in the store): for the ``ep`` / ``ep_wd`` variants one per (seed,
    rate) with fresh kaiming-uniform scores (``grok_core.edge_popup``); for ``wd`` (ordinary
    training, no scores and no mask) one per seed."""
    from .edge_popup import initial_scores
    key = config.dense_key()
    model = model_for(config)
    step = config.edge_popup.start_step
    learned = config.edge_popup.variant != "wd"
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


MEMBER_BUILDERS: dict[str, Callable[..., list[MemberSpec]]] = {
    "ticket": ticket_members,
    "norm_control": norm_control_members,
    "edge_popup": edge_popup_members,
}


def mask_recipe_members(config: ExperimentConfig, seeds: Sequence[int], rates: Sequence[float],
                        store: ArtifactStore) -> list[MemberSpec]:
    """The members of a recipe built from a pruning mask (``MASK_RECIPES``)."""
    return MEMBER_BUILDERS[config.recipe](config, seeds, rates, store)


def generalised_by(summary: dict[str, Any], step: int) -> bool:
    """Whether the dense run of ``summary`` had generalised (t_gen reached) by ``step``: its
    mask at that step makes a grokking ticket; otherwise a non-grokking one."""
    t_gen = summary.get("t_gen")
    return t_gen is not None and t_gen == t_gen and t_gen <= step


def non_grokking_warnings(members: Sequence[MemberSpec]) -> list[str]:
    """One line per seed whose ticket mask comes from a dense run that had not yet generalised
    at the mask step (so the ticket is a non-grokking ticket)."""
    lines, seen = [], set()
    for member in members:
        # None: pruned at initialisation, no dense run involved
        if member.labels.get("base_generalised") is not False or member.seed in seen:
            continue
        seen.add(member.seed)
        t_gen = member.labels.get("base_t_gen")
        when = (f"it generalised only at step {t_gen}" if t_gen is not None and t_gen == t_gen
                else "it never reached the accuracy threshold")
        lines.append(f"warning: seed {member.seed}: the mask comes from dense step "
                     f"{member.labels['prune_step']}, before its dense run had generalised "
                     f"({when}): a non-grokking ticket (column base_generalised=False)")
    return lines


def run_ticket(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore, *,
               device: Any = "cpu", progress: bool = False, log: Log = lambda _: None,
               rates: Optional[Sequence[float]] = None) -> ExperimentResult:
    """Grokking (or non-grokking) tickets of every seed at every pruning rate, one cohort; the
    norm-matched dense controls of those tickets for ``recipe=norm_control``; edge-popup from
    each seed's theta_mem for ``recipe=edge_popup``."""
    rates = list(rates) if rates else [config.prune.rate]
    for rate in rates:
        check_pruning_rate(rate, "--rates")
    base_rows = base_curves = None
    if config.needs_dense_base:
        base_rows, base_curves = ensure_dense(config.dense_base(), seeds, store, device=device,
                                              progress=progress, log=log)
    members = mask_recipe_members(config, seeds, rates, store)
    for line in non_grokking_warnings(members):
        log(line)
    source = ("weights of dense step" if config.recipe == "edge_popup" else "mask from dense step")
    log(f"{config.recipe}: {len(members)} members (seeds {','.join(map(str, seeds))} x rates "
        f"{','.join(map(str, rates))}), {source} {members[0].labels['prune_step']}")
    result = train_cohort(config, members, device=device, progress=progress,
                          desc=f"{config.recipe} x{len(members)}")
    rows, curves = member_tables(config, members, result)
    return ExperimentResult(config.recipe, config.dense_key(), rows, curves, base_rows,
                            base_curves)


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
    return _ordered(rows), curves


RECIPE_REGISTRY: dict[str, Callable[..., ExperimentResult]] = {
    "dense": run_dense,
    "ticket": run_ticket,
    "norm_control": run_ticket,
    "edge_popup": run_ticket,
}


def run_experiment(config: ExperimentConfig, seeds: Sequence[int], store: ArtifactStore,
                   rates: Optional[Sequence[float]] = None, **kwargs: Any) -> ExperimentResult:
    """Run ``config.recipe`` for a cohort of seeds (and, for tickets, pruning rates)."""
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    return RECIPE_REGISTRY[config.recipe](config, list(seeds), store, rates=rates, **kwargs)
