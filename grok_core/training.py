"""The one training loop: a cohort of K members trained as one stacked model.

Full batch (the default): every step does one forward on the training split (its accuracy is
recorded for every step, so t_mem is exact to the step), one backward of the summed member
losses, and one optimiser update (AdamW, or SGD). With ``train.batch_size`` a step sees one
minibatch (the same for every member: see ``minibatch``) and the whole training split is
evaluated with the test split instead. Every ``train.eval_every`` steps the test split is
evaluated and a curve row is kept per member (so t_gen is exact to the evaluation interval).
``theta_t`` is handed to ``on_checkpoint`` at the checkpoint cadence. Members never interact:
member k's numbers equal a solo run of member k.

How the loop is built: ``_Loop`` holds what a run reads and never changes (model, data,
settings, listeners); ``LoopState`` holds everything it changes (step, the optimiser with the
members' weights and moments, curve rows, who stopped when). A checkpoint is a snapshot of that
state, a ``TrainingState`` (``LoopState.snapshot``), and resuming restores it
(``LoopState.restore``). ``train_cohort`` is the few calls that tie them together.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .config import ExperimentConfig, TrainConfig
from .edge_popup import ScoreForward
from .metrics import first_reached, fourier_entropy, grokking_ratio
from .models import CohortModel, Params, apply_masks, build_model, stack_members
from .models.cohort import TrainingPass, member_rows
from .optim import CohortAdamW, CohortSGD, build_optimizer
from .tasks import Dataset, Split, build_dataset

CURVE_COLUMNS = ("step", "train_loss", "train_acc", "test_loss", "test_acc", "l1_norm", "l2_norm")
# recorded only when asked for (train.fourier_entropy), after the columns above
OPTIONAL_CURVE_COLUMNS = ("fourier_entropy",)
TEST_ACC_COLUMN = CURVE_COLUMNS.index("test_acc")
# sequence models evaluate this many examples at a time (an LSTM's activations over a long
# split would not fit in memory at once)
SEQUENCE_EVAL_CHUNK = 1024


def curve_columns(n_columns: int) -> list[str]:
    """Names of the first ``n_columns`` curve columns (the optional ones after the others)."""
    return list((*CURVE_COLUMNS, *OPTIONAL_CURVE_COLUMNS)[:n_columns])


def fourier_entropies(model: CohortModel, effective: Mapping[str, torch.Tensor],
                      variant: str) -> torch.Tensor:
    """[K] Fourier entropy of each member's (masked) effective input weights."""
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


def listens_to_eval(callbacks: Callbacks) -> bool:
    """Whether ``callbacks`` has an ``on_eval`` other than the do-nothing one (only then does
    the loop hand evaluations to the host, which syncs a GPU)."""
    return getattr(callbacks.on_eval, "__func__", None) is not Callbacks.on_eval


@dataclass
class TrainingState:
    """A snapshot from which ``train_cohort(..., resume=state)`` continues exactly as if it
    had never stopped: weights and AdamW moments of the members still training, curve rows and
    per-step train accuracy so far, and the final weights of the members that stopped. It is
    ``LoopState`` in stored form (``LoopState.snapshot`` / ``LoopState.restore``)."""

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


def cohort_loss_and_grads(model: CohortModel, params: Mapping[str, torch.Tensor],
                          masks: Optional[Mapping[str, torch.Tensor]], inputs: torch.Tensor,
                          labels: torch.Tensor, loss_dtype: torch.dtype,
                          with_grads: bool = True, with_loss: bool = True):
    """``model.loss_and_grads`` of the whole cohort; on a CPU, a model with
    ``cpu_members_at_a_time`` computes that many members at a time (contiguous row slices, no
    copies): each chunk writes its gradients into its rows of the cohort's (``grads_out``),
    losses and accuracies are concatenated. A member's numbers do not depend on the chunk
    (bitwise on this CPU, as they do not on the cohort: tests/test_engine.py). A model that
    computes its gradients by hand (or none are asked) runs in ``torch.inference_mode``: what it
    returns is then read, never changed in place or differentiated."""
    with torch.inference_mode(not (with_grads and model.needs_autograd)):
        return _cohort_loss_and_grads(model, params, masks, inputs, labels, loss_dtype,
                                      with_grads, with_loss)


def _cohort_loss_and_grads(model: CohortModel, params: Mapping[str, torch.Tensor],
                           masks: Optional[Mapping[str, torch.Tensor]], inputs: torch.Tensor,
                           labels: torch.Tensor, loss_dtype: torch.dtype, with_grads: bool,
                           with_loss: bool):
    k_count = next(iter(params.values())).shape[0]
    chunk = model.cpu_members_at_a_time
    if (chunk is None or k_count <= chunk
            or next(iter(params.values())).device.type != "cpu"):
        return model.loss_and_grads(params, masks, inputs, labels, loss_dtype, with_grads,
                                    with_loss)
    grads = {n: torch.empty_like(t) for n, t in params.items()} if with_grads else None
    parts = [model.loss_and_grads(member_rows(params, s, chunk), member_rows(masks, s, chunk),
                                  inputs, labels, loss_dtype, with_grads, with_loss,
                                  grads_out=member_rows(grads, s, chunk))
             for s in range(0, k_count, chunk)]
    return (torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts]),
            grads)


class FixedMasks:
    """The loop's forward for members with fixed keep-masks (or none): dense runs, tickets,
    norm controls. ``grok_core.edge_popup.ScoreForward`` is the other kind (learned masks)."""

    frozen: tuple[str, ...] = ()  # every tensor trains

    def __init__(self, model: CohortModel, masks: Optional[Params]) -> None:
        self.model, self.masks = model, masks
        # the model's training pass bound to the weights it was made for (held, so that they
        # stay alive and another tensor is never mistaken for one of them)
        self._bound: Optional[tuple[tuple[torch.Tensor, ...], Optional[TrainingPass]]] = None

    def effective(self, params: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
        """W * m for masked tensors (pruned weights are zero anyway), others as they are."""
        return apply_masks(params, self.masks)

    def loss_and_grads(self, params: Mapping[str, torch.Tensor], inputs: torch.Tensor,
                       labels: torch.Tensor, loss_dtype: torch.dtype, with_grads: bool = True,
                       with_loss: bool = True):
        """Loss [K] (NaN if not ``with_loss`` and the model skips it), accuracy [K],
        gradients of the raw parameters (zero where pruned). With gradients, by the model's
        bound training pass where it has one (its outputs are then reused by the next call)."""
        if with_grads:
            training_pass = self._training_pass(params, loss_dtype)
            if training_pass is not None:
                return training_pass(inputs, labels, with_loss)
        return cohort_loss_and_grads(self.model, params, self.masks, inputs, labels,
                                     loss_dtype, with_grads, with_loss)

    def _training_pass(self, params: Mapping[str, torch.Tensor],
                       loss_dtype: torch.dtype) -> Optional[TrainingPass]:
        """``model.training_pass`` for these weights, bound again whenever one of them is
        another tensor (members stopped, a resumed state)."""
        tensors = tuple(params.values())
        if self._bound is None or not _same_tensors(self._bound[0], tensors):
            self._bound = (tensors, self.model.training_pass(params, self.masks, loss_dtype))
        return self._bound[1]

    def updated(self) -> None:
        """The optimiser has changed the parameters (nothing to refresh: the masks are fixed)."""

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with the members at ``positions`` only."""
        self._bound = None  # bound to the masks of every member
        if self.masks is not None:
            self.masks = _keep_rows(self.masks, positions,
                                    next(iter(self.masks.values())).device)


def _same_tensors(these: Sequence[torch.Tensor], those: Sequence[torch.Tensor]) -> bool:
    return len(these) == len(those) and all(a is b for a, b in zip(these, those))


Forward = Union[FixedMasks, ScoreForward]
Optimizer = Union[CohortAdamW, CohortSGD]


def forward_for(config: ExperimentConfig, model: CohortModel, members: Sequence[MemberSpec],
                masks: Optional[Params]) -> Forward:
    """The loop's forward for these members: learned masks where the config says so
    (``ExperimentConfig.learns_masks``: edge-popup's ``ep`` and ``ep_wd``), fixed ones
    otherwise."""
    if config.learns_masks:
        rates = [m.labels.get("pruning_rate", config.prune.rate) for m in members]
        return ScoreForward(model, rates, train_weights=config.edge_popup.trains_weights)
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


@dataclass
class _Loop:
    """What a run reads and never changes: the model, the data on the device, the settings and
    the listeners."""

    config: ExperimentConfig
    model: CohortModel
    train: Split
    test: Split
    device: torch.device
    callbacks: Callbacks
    bar: _Progress
    loss_dtype: torch.dtype
    k_count: int  # members in the cohort (stopped ones included)
    batched: bool  # a step sees a minibatch, not the whole training split
    chunk: Optional[int]  # examples evaluated at a time (sequence models)
    checkpoint_steps: frozenset[int]
    wants_eval: bool  # someone listens to on_eval (copying rows to the host syncs a GPU)

    @property
    def run(self) -> TrainConfig:
        """The training settings (``config.train``)."""
        return self.config.train


@dataclass
class LoopState:
    """Everything the loop changes as it runs; ``snapshot()`` is what a checkpoint saves.

    Members are cohort indices 0..K-1; ``active`` lists those still training, in the order of
    the rows of the optimiser's stacked tensors (their positions).
    """

    optimizer: Optimizer  # the active members' weights (``params``) and moments
    forward: Forward  # their masks, fixed or learned
    train_acc_per_step: torch.Tensor  # [steps + 1, K]; NaN between evaluations if minibatched
    active: list[int]
    active_index: torch.Tensor  # ``active`` as a tensor on the device (made in ``keep``, not
    # per step: the loop indexes its per-step train accuracy with it)
    generalised_since: list[Optional[int]]  # per member: since when it holds the threshold
    stopped_at: list[Optional[int]]  # per member: its last step, once it has stopped
    stopped_params: dict[int, Params] = field(default_factory=dict)  # their final weights
    rows: list[torch.Tensor] = field(default_factory=list)  # one [K, columns] per evaluation
    step: int = 0  # the step being run (the next one to run, between steps)
    last_checkpoint: Optional[int] = None
    last_eval: Optional[int] = None

    @property
    def params(self) -> Params:
        """The active members' stacked weights (updated in place by the optimiser)."""
        return self.optimizer.params

    def keep(self, positions: Sequence[int]) -> None:
        """Go on with the active members at ``positions`` only."""
        self.optimizer.keep(positions)
        self.forward.keep(positions)
        self.active = [self.active[p] for p in positions]
        self.active_index = _index(self.active, self.active_index.device)

    def snapshot(self) -> TrainingState:
        """A copy of this state from which a run resumes (``restore``)."""
        return TrainingState(
            step=self.step, params=_detached(self.params),
            optimizer=self.optimizer.state_dict(), rows=torch.stack(self.rows),
            train_acc_per_step=self.train_acc_per_step[:self.step].clone(),
            generalised_since=list(self.generalised_since), last_checkpoint=self.last_checkpoint,
            active=list(self.active), stopped_at=list(self.stopped_at),
            stopped_params=dict(self.stopped_params))

    def restore(self, saved: TrainingState, device: torch.device) -> None:
        """Continue from ``saved`` (a snapshot of a run of the same config and members)."""
        if saved.active is not None and saved.active != self.active:
            self.keep(saved.active)  # the cohort starts with every member: positions = indices
        for name, tensor in self.params.items():
            if tensor.shape != saved.params[name].shape:
                raise ValueError(f"resume state does not fit these members ({name})")
            tensor.copy_(saved.params[name])
        self.optimizer.load_state_dict(saved.optimizer)
        self.rows.extend(saved.rows.to(device).unbind(0))
        self.last_eval = (int(saved.rows[-1, self.active[0], 0])
                          if len(saved.rows) and self.active else None)
        self.train_acc_per_step[:saved.step] = saved.train_acc_per_step.to(device)
        self.generalised_since[:] = saved.generalised_since
        self.last_checkpoint = saved.last_checkpoint
        if saved.stopped_at is not None:
            self.stopped_at[:] = saved.stopped_at
        self.stopped_params.update({int(k): {n: t.to(device) for n, t in p.items()}
                                    for k, p in saved.stopped_params.items()})
        self.step = saved.step


def flush_subnormals() -> None:
    """Have this process's CPU kernels treat subnormal floats (|x| < 1.2e-38 in float32) as zero.

    Once a network has memorised, softmax tails, gradients and Adam's second moments fall into
    the subnormal range, and x86 CPUs compute on subnormals up to 100x slower: without this a
    dense run at lr 1e-3, wd 0.1 ran 2.8x slower than one at lr 1e-2, wd 1 (same size and steps).
    Values that small change no accuracy or loss we report. A GPU flushes them by itself. The
    setting is process-wide, and the engine owns the process it trains in (``ENGINE_VERSION`` 3
    is the first that flushes).
    """
    torch.set_flush_denormal(True)


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
    flush_subnormals()
    loop, state = _start(config, members, resolve_device(device), callbacks or Callbacks(),
                         dataset or build_dataset(config.task), progress, desc)
    if resume is not None:
        state.restore(resume, loop.device)
    try:
        _run_steps(loop, state, state_every)
        if state.active:  # the members that trained the whole budget
            _finish(loop, state)
    finally:
        last = state.rows[-1][:, TEST_ACC_COLUMN].nan_to_num(0.0) if state.rows else torch.zeros(1)
        loop.bar.update(state.step, last, loop.run.threshold)
        loop.bar.close()
    return _result(loop, state, members)


def _start(config: ExperimentConfig, members: Sequence[MemberSpec], device: torch.device,
           callbacks: Callbacks, dataset: Dataset, progress: bool, desc: str
           ) -> tuple[_Loop, LoopState]:
    """The run's fixed parts and its state at step 0: theta_0 (or the members' own initial
    weights) under their masks, fresh optimiser moments."""
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
    run, k_count = config.train, len(members)
    batched = run.batch_size is not None and run.batch_size < len(train)
    loop = _Loop(
        config=config, model=model, train=train, test=test, device=device, callbacks=callbacks,
        bar=_Progress(progress, run.steps, desc), loss_dtype=getattr(torch, run.loss_dtype),
        k_count=k_count, batched=batched,
        chunk=SEQUENCE_EVAL_CHUNK if dataset.kind == "sequences" else None,
        checkpoint_steps=frozenset(run.checkpoint_steps()),
        # overridden in a subclass or set on the instance (a plain function has no __func__)
        wants_eval=listens_to_eval(callbacks))
    # full batch: every step's train accuracy; minibatch: only evaluated steps (NaN between)
    train_acc_per_step = torch.full((run.steps + 1, k_count), 0.0 if not batched
                                    else float("nan"), device=device)
    state = LoopState(optimizer=optimizer, forward=forward, train_acc_per_step=train_acc_per_step,
                      active=list(range(k_count)), active_index=_index(range(k_count), device),
                      generalised_since=[None] * k_count,
                      stopped_at=[None] * k_count)
    return loop, state


def _run_steps(loop: _Loop, state: LoopState, state_every: Optional[int]) -> None:
    """Steps from ``state.step`` to the budget, or until every member has stopped; a snapshot
    to ``on_state`` every ``state_every`` steps (not at the step the run started from)."""
    start = state.step
    for step in range(start, loop.run.steps):
        state.step = step
        if state_every and step > start and step % state_every == 0:
            loop.callbacks.on_state(state.snapshot())
        if not _train_step(loop, state, step):
            return  # no member left
    state.step = loop.run.steps


def _train_step(loop: _Loop, state: LoopState, step: int) -> bool:
    """One step: loss and gradients, the checkpoint and evaluation due at ``step`` (members
    that have held the threshold long enough stop there), one optimiser update. False when no
    member is left to update."""
    run = loop.run
    batch = minibatch(loop.train, run.batch_size, step, loop.config.task.split_seed)
    evaluating = step % run.eval_every == 0
    # the step's loss is read only where it is the curve's train loss
    loss, accuracy, grads = state.forward.loss_and_grads(
        state.params, batch.inputs, batch.labels, loop.loss_dtype,
        with_loss=evaluating and not loop.batched)
    if not loop.batched:
        _record_train_acc(state, step, accuracy)
    if step in loop.checkpoint_steps:
        loop.callbacks.on_checkpoint(step, _detached(state.forward.effective(state.params)),
                                     list(state.active))
        state.last_checkpoint = step
    if evaluating:
        effective = state.forward.effective(state.params)
        test_acc = _evaluate(loop, state, step, None if loop.batched else loss, accuracy,
                             effective)
        if step % (run.eval_every * 20) == 0:
            loop.bar.update(step, test_acc, run.threshold)
        done = _done(loop, state, step, test_acc)
        if done:
            _hand_over(loop, state, done, step, effective)
            kept = [p for p in range(len(state.active)) if p not in done]
            if not kept:
                state.active = []
                return False
            state.keep(kept)
            grads = _keep_rows(grads, kept, loop.device)
    state.optimizer.step(grads)
    state.forward.updated()
    return True


def _record_train_acc(state: LoopState, step: int, accuracy: torch.Tensor) -> None:
    """The active members' train accuracy [K active] at ``step``, in their members' places: a
    plain copy while every member is active (they are then 0..K-1 in order), several times
    cheaper than the indexed write."""
    row = state.train_acc_per_step[step]
    if len(state.active) == row.shape[0]:
        row.copy_(accuracy)
    else:
        row[state.active_index] = accuracy


def _evaluate(loop: _Loop, state: LoopState, step: int, train_loss: Optional[torch.Tensor],
              train_acc: Optional[torch.Tensor],
              effective: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Append a curve row at ``step`` (heard by ``on_eval``) and return the test accuracy [K
    active]; ``train_loss`` None: measure the whole training split here (the step saw a
    minibatch)."""
    with torch.no_grad():
        if train_loss is None:
            train_loss, train_acc = evaluate_split(loop.model, effective, loop.train,
                                                   loop.loss_dtype, loop.chunk)
            _record_train_acc(state, step, train_acc)
        test_loss, test_acc = evaluate_split(loop.model, effective, loop.test, loop.loss_dtype,
                                             loop.chunk)
        l1, l2 = weight_norms(effective)
        columns = [torch.full_like(l1, step), train_loss.detach().float(), train_acc,
                   test_loss.float(), test_acc, l1, l2]
        if loop.run.fourier_entropy is not None:
            columns.append(fourier_entropies(loop.model, effective, loop.run.fourier_entropy))
        row = torch.stack(columns, dim=1)
        if len(state.active) < loop.k_count:  # stopped members' rows stay NaN
            part = row
            row = torch.full((loop.k_count, part.shape[1]), float("nan"), device=loop.device)
            row[state.active_index] = part
    state.rows.append(row)
    state.last_eval = step
    if loop.wants_eval:  # copying to the host syncs a GPU: only when someone listens
        loop.callbacks.on_eval(step, {c: row[:, i].cpu().numpy()
                                      for i, c in enumerate(curve_columns(row.shape[1]))})
    return test_acc


def _done(loop: _Loop, state: LoopState, step: int, test_acc: torch.Tensor) -> list[int]:
    """Positions (in ``state.active``) of the members that stop at ``step``: those that have
    held the threshold ``train.stop_margin`` steps (none without an early stop)."""
    run = loop.run
    if run.stop_margin is None:
        return []
    return _held(state.generalised_since, state.active, step, test_acc, run.threshold,
                 run.stop_margin)


def _hand_over(loop: _Loop, state: LoopState, positions: list[int], step: int,
               effective: Mapping[str, torch.Tensor]) -> None:
    """Members at ``positions`` (of ``state.active``) end at ``step`` with ``effective``
    weights: their last checkpoint (unless ``step`` was one) and their final weights."""
    finished = [state.active[p] for p in positions]
    if state.last_checkpoint != step:  # a checkpoint step already handed them over
        index = _index(positions, loop.device)
        loop.callbacks.on_checkpoint(step, {n: t.index_select(0, index).detach().clone()
                                            for n, t in effective.items()}, finished)
    for position, k in zip(positions, finished):
        state.stopped_at[k] = step
        state.stopped_params[k] = {n: t[position].detach().clone() for n, t in effective.items()}


def _finish(loop: _Loop, state: LoopState) -> None:
    """The end of the budget for the members still active: their train accuracy at the final
    step, a last curve row (unless that step was just evaluated), and their hand-over."""
    step = state.step
    with torch.no_grad():
        effective = state.forward.effective(state.params)
        loss, accuracy = evaluate_split(loop.model, effective, loop.train, loop.loss_dtype,
                                        loop.chunk)
        _record_train_acc(state, step, accuracy)
        if state.last_eval != step:
            _evaluate(loop, state, step, loss, accuracy, effective)
        _hand_over(loop, state, list(range(len(state.active))), step, effective)


def _result(loop: _Loop, state: LoopState, members: Sequence[MemberSpec]) -> CohortResult:
    """Per-member curves and summaries, and every member's final weights."""
    curve = torch.stack(state.rows).cpu().numpy()  # [evals, K, columns]
    per_step = state.train_acc_per_step.cpu().numpy()
    stopped_at = state.stopped_at
    summaries, frames = [], []
    for k, member in enumerate(members):
        own = curve[:, k, :]
        frame = pd.DataFrame(own[~np.isnan(own[:, 0])], columns=curve_columns(own.shape[1]))
        frame["step"] = frame["step"].astype(np.int64)
        frame.insert(0, "member", k)
        frames.append(frame)
        summaries.append(_summarise(k, member, frame, per_step[: stopped_at[k] + 1, k],
                                    loop.run.threshold, stopped_at[k]))
    final = stack_members([state.stopped_params[k] for k in range(loop.k_count)])
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


def evaluate_split(model: CohortModel, effective: Mapping[str, torch.Tensor], split: Split,
                   loss_dtype: torch.dtype, chunk: Optional[int] = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean loss and accuracy over a whole split (no gradients), ``chunk`` examples
    at a time if given (weighted by their sizes: for mean losses and accuracies only, never a
    regression's R^2)."""
    with torch.no_grad():
        if chunk is None or len(split) <= chunk:
            loss, acc, _ = cohort_loss_and_grads(model, effective, None, split.inputs,
                                                 split.labels, loss_dtype, with_grads=False)
            return loss, acc
        total_loss, total_acc = 0.0, 0.0
        for start in range(0, len(split), chunk):
            inputs = split.inputs[start:start + chunk]
            loss, acc, _ = cohort_loss_and_grads(model, effective, None, inputs,
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
