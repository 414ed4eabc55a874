"""The one training loop: a cohort of K members trained as one stacked model.

Full batch (the default): every step does one forward on the training split (its accuracy is
recorded for every step, so t_mem is exact to the step), one backward of the summed member
losses, and one optimiser update (AdamW, or SGD). With ``train.batch_size`` a step sees one
minibatch (the same for every member: see ``minibatch``) and the whole training split is
evaluated with the test split instead. Every ``train.eval_every`` steps the test split is
evaluated and a curve row is kept per member (so t_gen is exact to the evaluation interval).
``theta_t`` is handed to ``on_checkpoint`` at the checkpoint cadence. Members never interact: member k's numbers equal a solo run of member k.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from .config import ExperimentConfig
from .metrics import first_reached, grokking_ratio
from .models import CohortModel, Params, apply_masks, build_model, stack_members
from .optim import build_optimizer
from .tasks import Dataset, Split, build_dataset

CURVE_COLUMNS = ("step", "train_loss", "train_acc", "test_loss", "test_acc", "l1_norm", "l2_norm")
# recorded only when asked for (train.fourier_entropy), after the columns above
OPTIONAL_CURVE_COLUMNS = ("fourier_entropy",)


def curve_columns(n_columns: int) -> list[str]:
    """Names of the first ``n_columns`` curve columns (the optional ones after the others)."""
    return list((*CURVE_COLUMNS, *OPTIONAL_CURVE_COLUMNS)[:n_columns])


def fourier_entropies(model: CohortModel, effective: Mapping[str, torch.Tensor],
                      variant: str) -> torch.Tensor:
    """[K] Fourier entropy of each member's (masked) effective input weights."""
    from .metrics import fourier_entropy

    weights = model.effective_input_weights(effective)
    return torch.tensor([fourier_entropy(w, variant) for w in weights], dtype=torch.float32,
                        device=weights.device)


@dataclass
class MemberSpec:
    """What sets one member apart: its seed (init and nothing else), and optionally its own
    initial weights (a rewound or rescaled theta_0), keep-masks, lr and weight decay."""

    seed: int
    init: Optional[Params] = None
    mask: Optional[Mapping[str, torch.Tensor]] = None
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    labels: dict[str, Any] = field(default_factory=dict)


@dataclass
class CohortResult:
    """Per-member summaries, curves (one row per member per evaluated step), final weights."""

    summaries: list[dict[str, Any]]
    curves: pd.DataFrame
    final_params: Params
    steps_run: int


class Callbacks:
    """Hooks of the loop; override what you need (all default to doing nothing)."""

    def on_checkpoint(self, step: int, params: Params, members: Sequence[int]) -> None:
        """theta_t (masked, detached) at a checkpoint step, stacked [len(members), ...] for the
        members (indices into the cohort) still training; a member that stops early gets one
        more call at its last step."""

    def on_eval(self, step: int, rows: Mapping[str, np.ndarray]) -> None:
        """Curve values of every member (arrays of length K; NaN for stopped members)."""

    def on_state(self, state: "TrainingState") -> None:
        """Everything needed to resume the run, every ``state_every`` steps (when asked)."""


@dataclass
class TrainingState:
    """A snapshot from which ``train_cohort(..., resume=state)`` continues exactly as if it
    had never stopped: weights and AdamW moments of the members still training, curve rows and
    per-step train accuracy so far, and the final weights of the members that stopped."""

    step: int  # the next step to run
    params: Params  # [len(active), ...]
    optimizer: dict[str, Any]
    rows: torch.Tensor  # [evaluations, K, len(CURVE_COLUMNS)], NaN once a member stopped
    train_acc_per_step: torch.Tensor  # [step, K]
    generalised_since: list[Optional[int]]
    last_checkpoint: Optional[int]
    active: Optional[list[int]] = None  # None: every member
    stopped_at: Optional[list[Optional[int]]] = None
    stopped_params: dict[int, Params] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialised with torch.save (tensors moved to the CPU)."""
        buffer = io.BytesIO()
        torch.save(_to_cpu(dataclasses.asdict(self)), buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TrainingState":
        """Inverse of ``to_bytes``."""
        return cls(**torch.load(io.BytesIO(data), weights_only=True))


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' / None picks CUDA when available, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def weight_norms(params: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member L1 and L2 norms over all (effective) parameters."""
    l1 = sum(t.detach().abs().flatten(1).sum(1) for t in params.values())
    l2 = sum(t.detach().pow(2).flatten(1).sum(1) for t in params.values()).sqrt()
    return l1, l2


class _Progress:
    """A tqdm bar on stderr when asked for, nothing otherwise."""

    def __init__(self, enabled: bool, total: int, desc: str) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr,
                            dynamic_ncols=True, mininterval=0.5)

    def update(self, step: int, test_acc: torch.Tensor, threshold: float) -> None:
        if self.bar is not None:
            done = int((test_acc >= threshold).sum())
            self.bar.set_postfix_str(f"test_acc max {float(test_acc.max()):.3f} "
                                     f"generalised {done}/{len(test_acc)}", refresh=False)
            self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class FixedMasks:
    """The loop's forward for members with fixed keep-masks (or none): dense runs, tickets,
    norm controls. ``grok_core.edge_popup.ScoreForward`` is the other kind (learned masks)."""

    frozen: tuple[str, ...] = ()  # every tensor trains

    def __init__(self, model: CohortModel, masks: Optional[Params]) -> None:
        self.model, self.masks = model, masks

    def effective(self, params: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
        """W * m for masked tensors (pruned weights are zero anyway), others as they are."""
        return apply_masks(params, self.masks)

    def loss_and_grads(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype, with_grads: bool = True):
        """Loss [K], accuracy [K], gradients of the raw parameters (zero where pruned)."""
        return self.model.loss_and_grads(params, self.masks, inputs, labels, loss_dtype,
                                         with_grads)

    def updated(self) -> None:
        """The optimiser has changed the parameters (nothing to refresh: the masks are fixed)."""

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with the members at ``positions`` only."""
        if self.masks is not None:
            self.masks = _keep_rows(self.masks, positions,
                                    next(iter(self.masks.values())).device)


def forward_for(config: ExperimentConfig, model: CohortModel, members: Sequence[MemberSpec],
                masks: Optional[Params]):
    """The loop's forward for these members: learned edge-popup masks for the ``ep`` and
    ``ep_wd`` variants of recipe edge_popup, fixed masks otherwise."""
    if config.recipe == "edge_popup" and config.edge_popup.variant != "wd":
        from .edge_popup import ScoreForward
        rates = [m.labels.get("pruning_rate", config.prune.rate) for m in members]
        return ScoreForward(model, rates, train_weights=config.edge_popup.variant == "ep_wd")
    return FixedMasks(model, masks)


def _initial_state(model: CohortModel, members: Sequence[MemberSpec], device: torch.device
                   ) -> tuple[Params, Optional[Params]]:
    params = stack_members([m.init if m.init is not None else model.init_member(m.seed)
                            for m in members])
    masks = None
    if any(m.mask is not None for m in members):
        masks = {}
        for name in model.prunable:
            masks[name] = torch.stack([
                (m.mask[name] if m.mask is not None else torch.ones(model.specs[name].shape))
                .to(torch.float32) for m in members]).to(device)
    params = {n: t.to(device=device, dtype=torch.float32) for n, t in params.items()}
    # Pruned weights start at zero, so decay and Adam (zero moments) keep them exactly zero.
    return {n: t.detach().clone() for n, t in apply_masks(params, masks).items()}, masks


def train_cohort(config: ExperimentConfig, members: Sequence[MemberSpec], *,
                 device: str | torch.device | None = "cpu", progress: bool = False,
                 callbacks: Callbacks | None = None, dataset: Dataset | None = None,
                 desc: str = "train", state_every: int | None = None,
                 resume: TrainingState | None = None) -> CohortResult:
    """Train ``members`` (same task, model and step budget) together; see module docstring.

    With ``train.stop_margin``, a member that has held test accuracy >= threshold for that many
    steps stops (its curve and checkpoints end there) and leaves the stacked model, so the
    others train faster; the run ends when no member is left or at ``train.steps``.
    With ``state_every``, ``callbacks.on_state`` receives a :class:`TrainingState` every that
    many steps; ``resume`` continues from one (same config and members) with results identical
    to an uninterrupted run.
    """
    device = resolve_device(device)
    callbacks = callbacks or Callbacks()
    dataset = dataset or build_dataset(config.task)
    model = build_model(config.model, dataset.vocab, dataset.classes, dataset.kind,
                        config.loss, config.task.name)
    train, test = dataset.train.to(device), dataset.test.to(device)
    params, masks = _initial_state(model, members, device)
    forward = forward_for(config, model, members, masks)
    optim = config.optim
    optimizer = build_optimizer(
        optim, params, lr=[m.lr if m.lr is not None else optim.lr for m in members],
        weight_decay=[m.weight_decay if m.weight_decay is not None else optim.weight_decay
                      for m in members], frozen=forward.frozen)
    loss_dtype = getattr(torch, config.train.loss_dtype)
    run = config.train
    checkpoint_steps = set(run.checkpoint_steps())
    k_count = len(members)
    batched = run.batch_size is not None and run.batch_size < len(train)
    chunk = SEQUENCE_EVAL_CHUNK if dataset.kind == "sequences" else None
    # full batch: every step's train accuracy; minibatch: only evaluated steps (NaN between)
    train_acc_per_step = torch.full((run.steps + 1, k_count), 0.0 if not batched
                                    else float("nan"), device=device)
    rows: list[torch.Tensor] = []  # one [K, columns] row per evaluation
    generalised_since: list[Optional[int]] = [None] * k_count
    active = list(range(k_count))  # cohort indices of the members still training
    stopped_at: list[Optional[int]] = [None] * k_count
    stopped_params: dict[int, Params] = {}
    bar = _Progress(progress, run.steps, desc)
    # overridden in a subclass or set on the instance (a plain function has no __func__)
    wants_eval = getattr(callbacks.on_eval, "__func__", None) is not Callbacks.on_eval
    last_checkpoint = None
    last_eval = None

    def evaluate(step: int, train_loss: Optional[torch.Tensor],
                 train_acc: Optional[torch.Tensor],
                 effective: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A curve row; ``train_loss`` None: measure the whole training split here (the step
        saw a minibatch)."""
        nonlocal last_eval
        with torch.no_grad():
            if train_loss is None:
                train_loss, train_acc = evaluate_split(model, effective, train, loss_dtype, chunk)
                train_acc_per_step[step, _index(active, device)] = train_acc
            test_loss, test_acc = evaluate_split(model, effective, test, loss_dtype, chunk)
            l1, l2 = weight_norms(effective)
            columns = [torch.full_like(l1, step), train_loss.detach().float(), train_acc,
                       test_loss.float(), test_acc, l1, l2]
            if run.fourier_entropy is not None:
                columns.append(fourier_entropies(model, effective, run.fourier_entropy))
            part = torch.stack(columns, dim=1)
            row = part
            if len(active) < k_count:  # stopped members' rows stay NaN
                row = torch.full((k_count, part.shape[1]), float("nan"), device=device)
                row[_index(active, device)] = part
        rows.append(row)
        last_eval = step
        if wants_eval:  # copying to the host syncs a GPU: only when someone listens
            callbacks.on_eval(step, {c: row[:, i].cpu().numpy()
                                     for i, c in enumerate(curve_columns(row.shape[1]))})
        return test_acc

    def stop(positions: list[int], step: int, effective: Mapping[str, torch.Tensor]) -> None:
        """Members at ``positions`` (of ``active``) end at ``step`` with ``effective`` weights."""
        finished = [active[p] for p in positions]
        if last_checkpoint != step:  # a checkpoint step already handed them over
            index = _index(positions, device)
            callbacks.on_checkpoint(step, {n: t.index_select(0, index).detach().clone()
                                           for n, t in effective.items()}, finished)
        for position, k in zip(positions, finished):
            stopped_at[k] = step
            stopped_params[k] = {n: t[position].detach().clone() for n, t in effective.items()}

    start = 0
    if resume is not None:
        start = resume.step
        if resume.active is not None and resume.active != active:
            optimizer.keep(resume.active)
            params = optimizer.params
            forward.keep(resume.active)
            active = list(resume.active)
        for name, tensor in params.items():
            if tensor.shape != resume.params[name].shape:
                raise ValueError(f"resume state does not fit these members ({name})")
            tensor.copy_(resume.params[name])
        optimizer.load_state_dict(resume.optimizer)
        rows.extend(resume.rows.to(device).unbind(0))
        last_eval = int(resume.rows[-1, active[0], 0]) if len(resume.rows) and active else None
        train_acc_per_step[:start] = resume.train_acc_per_step.to(device)
        generalised_since[:] = resume.generalised_since
        last_checkpoint = resume.last_checkpoint
        if resume.stopped_at is not None:
            stopped_at[:] = resume.stopped_at
        stopped_params.update({int(k): {n: t.to(device) for n, t in p.items()}
                               for k, p in resume.stopped_params.items()})

    step = start
    try:
        for step in range(start, run.steps):
            if state_every and step > start and step % state_every == 0:
                callbacks.on_state(TrainingState(
                    step=step, params=_detached(params), optimizer=optimizer.state_dict(),
                    rows=torch.stack(rows), train_acc_per_step=train_acc_per_step[:step].clone(),
                    generalised_since=list(generalised_since), last_checkpoint=last_checkpoint,
                    active=list(active), stopped_at=list(stopped_at),
                    stopped_params=stopped_params))
            batch = minibatch(train, run.batch_size, step, config.task.split_seed)
            loss, accuracy, grads = forward.loss_and_grads(
                params, batch.inputs, batch.labels, loss_dtype)
            if not batched:
                train_acc_per_step[step, _index(active, device)] = accuracy
            if step in checkpoint_steps:
                callbacks.on_checkpoint(step, _detached(forward.effective(params)), list(active))
                last_checkpoint = step
            if step % run.eval_every == 0:
                effective = forward.effective(params)
                test_acc = evaluate(step, None if batched else loss, accuracy, effective)
                if step % (run.eval_every * 20) == 0:
                    bar.update(step, test_acc, run.threshold)
                if run.stop_margin is not None:
                    done = _held(generalised_since, active, step, test_acc, run.threshold,
                                 run.stop_margin)
                    if done:
                        stop(done, step, effective)
                        keep = [p for p in range(len(active)) if p not in done]
                        active = [active[p] for p in keep]
                        if not active:
                            break
                        optimizer.keep(keep)
                        params = optimizer.params
                        forward.keep(keep)
                        grads = _keep_rows(grads, keep, device)
            optimizer.step(grads)
            forward.updated()
        else:
            step = run.steps
        if active:  # the members that trained the whole budget
            with torch.no_grad():
                effective = forward.effective(params)
                loss, accuracy = evaluate_split(model, effective, train, loss_dtype, chunk)
                train_acc_per_step[step, _index(active, device)] = accuracy
                if last_eval != step:
                    evaluate(step, loss, accuracy, effective)
                stop(list(range(len(active))), step, effective)
    finally:
        bar.update(step, rows[-1][:, 4].nan_to_num(0.0) if rows else torch.zeros(1),
                   run.threshold)
        bar.close()

    curve = torch.stack(rows).cpu().numpy()  # [evals, K, columns]
    per_step = train_acc_per_step.cpu().numpy()
    summaries, frames = [], []
    for k, member in enumerate(members):
        own = curve[:, k, :]
        frame = pd.DataFrame(own[~np.isnan(own[:, 0])], columns=curve_columns(own.shape[1]))
        frame["step"] = frame["step"].astype(np.int64)
        frame.insert(0, "member", k)
        frames.append(frame)
        summaries.append(_summarise(k, member, frame, per_step[: stopped_at[k] + 1, k],
                                    run.threshold, stopped_at[k]))
    final = stack_members([stopped_params[k] for k in range(k_count)])
    return CohortResult(summaries=summaries, curves=pd.concat(frames, ignore_index=True),
                        final_params=final, steps_run=max(stopped_at))


def minibatch(split: Split, batch_size: Optional[int], step: int, seed: int) -> Split:
    """The examples of ``step``: the whole split (full batch, or a batch at least as large),
    else the step's slice of its epoch's permutation. Epoch e's permutation comes from a
    generator seeded by (seed, e), so the batch of any step is known without replaying the
    ones before (a resumed run sees the same batches) and every member sees the same ones; an
    epoch's last incomplete batch is dropped."""
    n = len(split)
    if batch_size is None or batch_size >= n:
        return split
    epoch, position = divmod(step, n // batch_size)
    order = _epoch_order(n, int(seed), epoch, split.labels.device)[
        position * batch_size:(position + 1) * batch_size]
    return Split(split.inputs.index_select(0, order), split.labels.index_select(0, order))


@functools.lru_cache(maxsize=2)
def _epoch_order(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The permutation of epoch ``epoch`` (drawn once per epoch, not per step)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).to(device)


# sequence models evaluate this many examples at a time (an LSTM's activations over a long
# split would not fit in memory at once)
SEQUENCE_EVAL_CHUNK = 1024


def evaluate_split(model: CohortModel, effective: Mapping[str, torch.Tensor], split: Split,
                   loss_dtype: torch.dtype, chunk: Optional[int] = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean loss and accuracy over a whole split (no gradients), ``chunk`` examples
    at a time if given (weighted by their sizes: for mean losses and accuracies only, never a
    regression's R^2)."""
    with torch.no_grad():
        if chunk is None or len(split) <= chunk:
            loss, acc, _ = model.loss_and_grads(effective, None, split.inputs, split.labels,
                                                loss_dtype, with_grads=False)
            return loss, acc
        total_loss, total_acc = 0.0, 0.0
        for start in range(0, len(split), chunk):
            inputs = split.inputs[start:start + chunk]
            loss, acc, _ = model.loss_and_grads(effective, None, inputs,
                                                split.labels[start:start + chunk],
                                                loss_dtype, with_grads=False)
            total_loss = total_loss + loss * len(inputs)
            total_acc = total_acc + acc * len(inputs)
        return total_loss / len(split), total_acc / len(split)


def _index(positions: Sequence[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(list(positions), dtype=torch.long, device=device)


def _keep_rows(tensors: Optional[Mapping[str, torch.Tensor]], positions: Sequence[int],
               device: torch.device) -> Optional[Params]:
    """The stacked rows at ``positions`` of every tensor (None stays None)."""
    if tensors is None:
        return None
    index = _index(positions, device)
    return {n: t.index_select(0, index) for n, t in tensors.items()}


def _detached(params: Mapping[str, torch.Tensor]) -> Params:
    return {name: tensor.detach().clone() for name, tensor in params.items()}


def _held(since: list, active: Sequence[int], step: int, test_acc: torch.Tensor,
          threshold: float, margin: int) -> list[int]:
    """Update when each active member first held test accuracy (``since``, by cohort index);
    the positions (in ``active``) of those that have now held it ``margin`` steps."""
    done = []
    for position, (k, value) in enumerate(zip(active, test_acc.tolist())):
        if value >= threshold:
            since[k] = step if since[k] is None else since[k]
        else:
            since[k] = None
        if since[k] is not None and step - since[k] >= margin:
            done.append(position)
    return done


def _summarise(k: int, member: MemberSpec, frame: pd.DataFrame, train_acc_per_step: np.ndarray,
               threshold: float, steps_run: int) -> dict[str, Any]:
    t_mem = first_reached(range(len(train_acc_per_step)), train_acc_per_step, threshold)
    t_gen = first_reached(frame["step"], frame["test_acc"], threshold)
    last = frame.iloc[-1]
    return {
        "member": k, "seed": member.seed, **member.labels,
        "t_mem": t_mem, "t_gen": t_gen, "tau_grok": grokking_ratio(t_mem, t_gen),
        "final_train_acc": float(last["train_acc"]), "final_test_acc": float(last["test_acc"]),
        "final_train_loss": float(last["train_loss"]), "final_test_loss": float(last["test_loss"]),
        "final_l1_norm": float(last["l1_norm"]), "final_l2_norm": float(last["l2_norm"]),
        "steps_run": steps_run,
    }
