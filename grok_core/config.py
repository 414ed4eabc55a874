"""Typed, validated experiment configs and dotted overrides.

Every setting lives in a frozen dataclass field with a default taken from the paper (see
``docs`` in the README) and a one-line help string. Configs validate themselves at construction
and raise :class:`ConfigError` naming the bad key and the allowed values, so bad input fails before
any work starts. ``ExperimentConfig.with_overrides(["optim.lr=0.01"])`` maps ``--set`` strings onto
the fields; unknown keys get the closest known key suggested.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union


class ConfigError(ValueError):
    """A user-caused configuration error; its message is one line meant for the user."""


def hp(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help string (shown by ``grok keys``)."""
    return field(default=default, metadata={"help": help})


def _closest(name: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def choice(key: str, value: str, options: typing.Iterable[str]) -> None:
    """Raise ConfigError unless ``value`` is one of ``options``, suggesting the closest."""
    options = list(options)
    if value not in options:
        raise ConfigError(
            f"{key}: unknown value {value!r}{_closest(str(value), options)}; "
            f"choose one of {', '.join(options)}"
        )


def field_defaults(cls: type) -> dict[str, Any]:
    """{field name: default} of a config dataclass (without constructing one)."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def is_prime(n: int) -> bool:
    """True if n is a prime number."""
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


# --- names known to the registries (kept here so configs validate without importing torch) ---
OPERATIONS = ("add", "sub", "mul", "div", "x2_plus_y2", "x2_xy_y2", "x3_xy", "random")
PRIME_OPERATIONS = ("div",)  # need a multiplicative inverse
PAIR_MODES = ("gt", "ge", "all")
TASKS = ("modular", "digits", "mnist", "polynomial", "parity", "text")
# tasks whose inputs are feature vectors (modular ones are token pairs, text token sequences)
VECTOR_TASKS = ("digits", "mnist", "polynomial", "parity")
SEQUENCE_TASKS = ("text",)
# tasks whose target is a number, not a class (their "accuracy" is R^2, see TrainConfig)
REGRESSION_TASKS = ("polynomial",)
# the settings of TaskConfig that only some tasks read: setting one for another task is refused
TASK_KEYS = {
    "op": ("modular",), "p": ("modular",), "pairs": ("modular",),
    "train_fraction": ("modular",), "table_seed": ("modular",),
    "n_train": ("digits", "mnist", "polynomial", "parity", "text"),
    "n_test": ("polynomial", "parity", "text"),
    "data_dir": ("mnist", "text"),
    "dim": ("polynomial", "parity"), "parity_k": ("parity",),
    "corpus": ("text",), "vocab_size": ("text",), "seq_len": ("text",),
}
# training / test examples of each task when task.n_train / task.n_test are not given
DEFAULT_TRAIN_EXAMPLES = {"digits": 1000, "mnist": 1000, "polynomial": 100, "parity": 1000,
                          "text": 1500}
DEFAULT_TEST_EXAMPLES = {"polynomial": 1000, "parity": 1000, "text": 500}
TEXT_CORPORA = ("synthetic", "aclimdb")
LOSSES = ("cross_entropy", "mse", "hinge")
OPTIMIZERS = ("adamw", "sgd")
MODELS = ("mlp", "transformer", "lstm")
# (embedding, hidden) widths of each model when model.d_emb / model.d_hidden are not given
DEFAULT_WIDTHS = {"mlp": (500, 48), "transformer": (128, 128), "lstm": (64, 128)}
RECIPES = ("dense", "ticket", "norm_control", "edge_popup")
# recipes built from a dense run's weights and a pruning rate: they take pruning rates and a
# base run (a ticket pruned at initialisation needs only the base run's theta_0)
MASK_RECIPES = ("ticket", "norm_control", "edge_popup")
EDGE_POPUP_VARIANTS = ("ep", "ep_wd", "wd")
NORMS = ("l1", "l2")
PRUNE_METHODS = ("magnitude", "random", "snip", "grasp", "synflow")
PRUNE_SCOPES = ("global", "layer")
LOSS_DTYPES = ("float32", "float64")
FOURIER_VARIANTS = ("shannon", "authors")
DIGITS_IMAGES = 1797         # scikit-learn's 8x8 digits


@dataclass(frozen=True)
class TaskConfig:
    """Which dataset (Fig. 2c-e, Fig. 13, App. J): modular arithmetic c = op(a, b) mod p, the 8x8
    digits scikit-learn ships or MNIST (Omnigrok's image setting), polynomial regression, sparse
    parity, or binary sentiment of text. Each key applies to the tasks named in its help; setting
    it for another task is refused (``TASK_KEYS``)."""

    name: str = hp("modular", "task: 'modular' (arithmetic mod p), 'digits' (scikit-learn's "
                              "1797 8x8 images, 10 classes), 'mnist' (the IDX files in "
                              "task.data_dir), 'polynomial' (regression y = (beta . x)^2 / 2, "
                              "x in R^dim), 'parity' (sparse parity of task.parity_k of dim "
                              "+-1 bits) or 'text' (binary sentiment, task.corpus)")
    op: str = hp("add", f"modular: operation, {', '.join(OPERATIONS)} ('random' is a seeded "
                        "random table)")
    p: int = hp(67, "modular: modulus; also vocabulary and output size")
    pairs: str = hp("ge", "modular: which (a, b) pairs: 'ge' a>=b (paper's text and authors' "
                          "code, 2278 for p=67), 'gt' a>b (the paper's count, 2211), 'all' every "
                          "ordered pair")
    train_fraction: float = hp(0.4, "modular: fraction of the shuffled pairs used for training")
    split_seed: int = hp(0, "seed of the data: the train/test shuffle, generated examples "
                            "(polynomial, parity, synthetic text) and minibatch order; separate "
                            "from the model seed")
    table_seed: int = hp(0, "modular: seed of the random table (op=random only)")
    n_train: Optional[int] = hp(None, "training examples (not modular): digits / mnist 1000 "
                                      "images (Omnigrok), polynomial 100, parity 1000, text "
                                      "1500 synthetic reviews or every aclImdb training review")
    n_test: Optional[int] = hp(None, "test examples of generated tasks: polynomial and parity "
                                     "1000, synthetic text 500")
    data_dir: Optional[str] = hp(None, "mnist: the folder holding train-images-idx3-ubyte, "
                                       "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                                       "t10k-labels-idx1-ubyte (each may end in .gz); text with "
                                       "task.corpus=aclimdb: the aclImdb folder (train/pos, "
                                       "train/neg, test/pos, test/neg)")
    dim: int = hp(40, "polynomial / parity: input dimension (x in R^dim, or dim bits)")
    parity_k: int = hp(3, "parity: the label is the product of this many fixed bits")
    corpus: str = hp("synthetic", "text: 'synthetic' (reviews generated from task.split_seed, "
                                  "no data needed) or 'aclimdb' (the IMDb reviews in "
                                  "task.data_dir; 25% of all reviews test)")
    vocab_size: int = hp(1000, "text: the most frequent words kept (others become one "
                               "unknown-word token)")
    seq_len: int = hp(500, "text: tokens per review (the last ones kept, short reviews padded "
                           "at the front)")

    def __post_init__(self) -> None:
        choice("task.name", self.name, TASKS)
        defaults = field_defaults(TaskConfig)
        for key, tasks in TASK_KEYS.items():
            if self.name not in tasks and getattr(self, key) != defaults[key]:
                raise ConfigError(f"task.{key}: applies to task.name={' or '.join(tasks)} only")
        for key in ("n_train", "n_test"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"task.{key}: must be at least 1, got {getattr(self, key)}")
        choice("task.op", self.op, OPERATIONS)
        choice("task.pairs", self.pairs, PAIR_MODES)
        choice("task.corpus", self.corpus, TEXT_CORPORA)
        if self.p < 3:
            raise ConfigError(f"task.p: must be at least 3, got {self.p}")
        if self.op in PRIME_OPERATIONS and not is_prime(self.p):
            raise ConfigError(f"task.p: op={self.op!r} needs a prime p, got {self.p}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"task.train_fraction: must be in (0, 1), got {self.train_fraction}")
        if self.dim < 1 or self.vocab_size < 1 or self.seq_len < 1:
            bad = next(k for k in ("dim", "vocab_size", "seq_len") if getattr(self, k) < 1)
            raise ConfigError(f"task.{bad}: must be at least 1, got {getattr(self, bad)}")
        if not 1 <= self.parity_k <= self.dim:
            raise ConfigError(f"task.parity_k: must be in [1, task.dim={self.dim}], got "
                              f"{self.parity_k}")
        self._check_data()

    def _check_data(self) -> None:
        """The data a task reads exists and fits its sizes (read headers only: bad data fails
        here, before any work)."""
        needs_folder = self.name == "mnist" or (self.name == "text" and self.corpus == "aclimdb")
        if needs_folder and self.data_dir is None:
            raise ConfigError(f"task.data_dir: task.name={self.name} reads its data from a folder "
                              "you give (nothing is downloaded)")
        if self.name == "text" and self.corpus == "synthetic" and self.data_dir is not None:
            raise ConfigError("task.data_dir: the synthetic corpus needs no data; set "
                              "task.corpus=aclimdb to read the reviews in that folder")
        if self.name == "mnist":
            from .idx import check_mnist_folder

            available = check_mnist_folder(self.data_dir)["train_images"][0]
            if self.train_examples > available:
                raise ConfigError(f"task.n_train: {self.train_examples} is more than the "
                                  f"{available} training images in {self.data_dir}")
        if self.name == "text" and self.corpus == "aclimdb":
            from .text import check_aclimdb_folder

            check_aclimdb_folder(self.data_dir)
        if self.name == "digits" and self.train_examples >= DIGITS_IMAGES:
            raise ConfigError(f"task.n_train: {self.train_examples} leaves no test images (there "
                              f"are {DIGITS_IMAGES})")

    @property
    def train_examples(self) -> Optional[int]:
        """Training examples of a non-modular task (``n_train`` or the task's default; None for
        aclImdb: every training review)."""
        if self.n_train is not None:
            return self.n_train
        if self.name == "text" and self.corpus == "aclimdb":
            return None
        return DEFAULT_TRAIN_EXAMPLES.get(self.name)

    @property
    def test_examples(self) -> Optional[int]:
        """Test examples of a generated task (``n_test`` or the task's default)."""
        return self.n_test if self.n_test is not None else DEFAULT_TEST_EXAMPLES.get(self.name)

    @property
    def regression(self) -> bool:
        """Whether the target is a number (MSE loss, R^2 as accuracy) rather than a class."""
        return self.name in REGRESSION_TASKS


@dataclass(frozen=True)
class ModelConfig:
    """Which network. Sizes left at None take the model's paper default."""

    name: str = hp("mlp", "model: 'mlp' (eq. 1; on vector tasks the task's MLP), "
                          "'transformer' (one layer, one head; modular) or 'lstm' (2 layers; "
                          "text)")
    d_emb: Optional[int] = hp(None, "embedding / residual width (default: mlp 500, transformer "
                                    "128, lstm 64)")
    d_hidden: Optional[int] = hp(None, "hidden width (default: mlp 48 on modular, the task's "
                                       "widths on vector tasks, every hidden layer this wide "
                                       "when set; transformer d_mlp 128; lstm 128)")
    init_scale: float = hp(1.0, "kappa: weights ~ N(0, (kappa/sqrt(fan_in))^2)")
    pos_embed: bool = hp(True, "transformer only: learned positional embedding W_pos (paper)")
    biases: bool = hp(True, "transformer only: MLP biases b_in, b_out (paper)")

    def __post_init__(self) -> None:
        choice("model.name", self.name, MODELS)
        for key in ("d_emb", "d_hidden"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"model.{key}: must be positive, got {value}")
        if self.init_scale <= 0:
            raise ConfigError(f"model.init_scale: must be positive, got {self.init_scale}")
        if self.name != "transformer" and not (self.pos_embed and self.biases):
            raise ConfigError("model.pos_embed / model.biases: apply to model.name=transformer only")

    @property
    def emb_width(self) -> int:
        """Resolved embedding width."""
        return self.d_emb or DEFAULT_WIDTHS[self.name][0]

    @property
    def hidden_width(self) -> int:
        """Resolved hidden width."""
        return self.d_hidden or DEFAULT_WIDTHS[self.name][1]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with decoupled weight decay (paper: lr 1e-3, betas 0.9/0.98, wd 1), or SGD (the
    sparse-parity literature's optimiser)."""

    name: str = hp("adamw", "'adamw' (decoupled weight decay) or 'sgd' (torch.optim.SGD: L2 "
                            "weight decay added to the gradient, optim.momentum)")
    lr: float = hp(1e-3, "learning rate")
    weight_decay: float = hp(1.0, "weight decay alpha (decoupled for adamw)")
    beta1: float = hp(0.9, "Adam beta1")
    beta2: float = hp(0.98, "Adam beta2")
    eps: float = hp(1e-8, "Adam epsilon")
    momentum: float = hp(0.0, "sgd: momentum (0: plain SGD)")

    def __post_init__(self) -> None:
        choice("optim.name", self.name, OPTIMIZERS)
        defaults = field_defaults(OptimConfig)
        only = {"adamw": ("beta1", "beta2", "eps"), "sgd": ("momentum",)}
        for optimizer, keys in only.items():
            for key in keys:
                if self.name != optimizer and getattr(self, key) != defaults[key]:
                    raise ConfigError(f"optim.{key}: applies to optim.name={optimizer} only")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"optim.momentum: must be in [0, 1), got {self.momentum}")
        if not self.lr > 0:
            raise ConfigError(f"optim.lr: must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError(f"optim.weight_decay: must be >= 0, got {self.weight_decay}")
        for key in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"optim.{key}: must be in [0, 1), got {getattr(self, key)}")
        if not self.eps > 0:
            raise ConfigError(f"optim.eps: must be positive, got {self.eps}")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: full batch (one step = one epoch) unless ``batch_size`` is set."""

    steps: int = hp(30_000, "optimisation steps")
    batch_size: Optional[int] = hp(None, "examples per step, drawn without replacement within "
                                         "each epoch in an order fixed by task.split_seed "
                                         "(None: the full training split every step)")
    eval_every: int = hp(10, "test evaluation and curve row every N steps (full batch: train "
                             "accuracy is tracked every step, so t_mem is exact to the step; "
                             "minibatch: both splits are evaluated whole every N steps)")
    checkpoint_every: int = hp(2_000, "keep theta_t every N steps (and at step 0 and the end)")
    threshold: float = hp(0.95, "accuracy P that defines t_mem and t_gen; on a regression task "
                                "the accuracy is R^2 = 1 - MSE / Var(y) of the split, so t_mem / "
                                "t_gen are when the train / test MSE falls below (1 - P) x the "
                                "split's target variance")
    stop_margin: Optional[int] = hp(None, "a member stops training once it has held test accuracy "
                                          ">= threshold for this many steps; the others go on "
                                          "(None: every member trains train.steps)")
    fourier_entropy: Optional[str] = hp(None, "MLP only: also record the Fourier entropy of the "
                                              "masked effective input weights at every "
                                              "evaluation (curve column fourier_entropy; Fig. "
                                              "8): 'shannon' or 'authors' (their variant); "
                                              "None records nothing")
    loss: Optional[str] = hp(None, "'cross_entropy', 'mse' (against one-hot targets: Omnigrok's "
                                   "MNIST setting; against the value for regression) or "
                                   "'hinge' (multi-class margin max(0, 1 + max_j z_j - z_y), the "
                                   "binary hinge for 2 classes); None: the task's, mse for "
                                   "regression, cross_entropy otherwise")
    loss_dtype: str = hp("float64", "dtype of the log-softmax; float64 as in the authors' code "
                                    "(float32 rounds the loss of memorised points to 0 and stalls "
                                    "generalisation)")

    def __post_init__(self) -> None:
        for key in ("steps", "eval_every", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key}: must be at least 1, got {getattr(self, key)}")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"train.threshold: must be in (0, 1], got {self.threshold}")
        if self.stop_margin is not None and self.stop_margin < 0:
            raise ConfigError(f"train.stop_margin: must be >= 0, got {self.stop_margin}")
        choice("train.loss_dtype", self.loss_dtype, LOSS_DTYPES)
        if self.loss is not None:
            choice("train.loss", self.loss, LOSSES)
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"train.batch_size: must be at least 1, got {self.batch_size}")
        if self.fourier_entropy is not None:
            choice("train.fourier_entropy", self.fourier_entropy, FOURIER_VARIANTS)

    def checkpoint_steps(self) -> list[int]:
        """Steps at which theta_t is kept: 0, every checkpoint_every, and the final step."""
        steps = list(range(0, self.steps, self.checkpoint_every))
        return steps + [self.steps]


@dataclass(frozen=True)
class PruneConfig:
    """How a ticket's mask is made: magnitude of theta_t of the dense run, rewound to theta_0."""

    method: str = hp("magnitude", "scores of the weights at prune.step: 'magnitude' |theta|, "
                                  "'random' (seeded Gaussian), 'snip' |theta dL/dtheta|, 'grasp' "
                                  "theta (H g), 'synflow' (iterative, data-free); data-based "
                                  "scores use the training split")
    rate: float = hp(0.6, "pruning rate k: fraction of prunable weights removed (0.6 keeps 40%)")
    step: Union[int, str] = hp("final", "dense step t whose weights give the mask: an integer "
                                        "checkpoint step or 'final'; 0 scores theta_0 "
                                        "(pruning at initialisation: no dense run is trained)")
    scope: str = hp("global", "'global' one threshold over all prunable tensors, 'layer' per tensor")
    synflow_input: str = hp("ones", "prune.method=synflow: 'ones' the all-ones input (every "
                                    "embedding row summed; Tanaka et al.), 'batch' the training "
                                    "split (the authors' variant)")

    def __post_init__(self) -> None:
        choice("prune.method", self.method, PRUNE_METHODS)
        choice("prune.scope", self.scope, PRUNE_SCOPES)
        choice("prune.synflow_input", self.synflow_input, ("ones", "batch"))
        check_pruning_rate(self.rate, "prune.rate")
        if isinstance(self.step, str):
            if self.step != "final":
                raise ConfigError(f"prune.step: must be an integer or 'final', got {self.step!r}")
        elif self.step < 0:
            raise ConfigError(f"prune.step: must be >= 0, got {self.step}")

    @property
    def at_init(self) -> bool:
        """Whether the mask scores theta_0 (step 0): the ticket needs no trained dense run."""
        return self.step == 0


@dataclass(frozen=True)
class NormControlConfig:
    """The norm-matched dense control (Fig. 5a): theta_0 rescaled to the ticket's norm."""

    norm: str = hp("l2", "recipe norm_control: which global norm of theta_0 (over the prunable "
                         "tensors) is matched to the ticket's rewound weights theta_0 * m: "
                         "'l1' or 'l2'")

    def __post_init__(self) -> None:
        choice("norm_control.norm", self.norm, NORMS)


@dataclass(frozen=True)
class EdgePopupConfig:
    """Edge-popup from a memorising solution (Sec. 5.2, Table 1; Ramanujan et al. 2020)."""

    variant: str = hp("ep", "recipe edge_popup: 'ep' scores trained, weights frozen (EP w/o "
                            "WD); 'ep_wd' weights and scores trained (EP w/ WD); 'wd' ordinary "
                            "training of the same weights (WD). Scores start kaiming-uniform; "
                            "each tensor keeps its top (1 - prune.rate) weights by |score|; "
                            "straight-through gradient; scores use optim.*")
    start_step: int = hp(1000, "theta_mem: the dense run's weights at this step (a checkpoint "
                               "of it); the dense run trains this many steps unless "
                               "base.train.steps says otherwise")

    def __post_init__(self) -> None:
        choice("edge_popup.variant", self.variant, EDGE_POPUP_VARIANTS)
        if self.start_step < 1:
            raise ConfigError(f"edge_popup.start_step: must be at least 1, got {self.start_step}")


def check_pruning_rate(rate: float, key: str = "pruning rate") -> None:
    """Raise ConfigError unless 0 <= rate < 1."""
    if not (isinstance(rate, (int, float)) and 0.0 <= rate < 1.0):
        raise ConfigError(f"{key}: must be in [0, 1), got {rate}")


SECTIONS: dict[str, type] = {
    "task": TaskConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
    "prune": PruneConfig,
    "norm_control": NormControlConfig,
    "edge_popup": EdgePopupConfig,
}
# The dense run behind a ticket may differ from the ticket in these sections only: the mask must
# fit the same architecture and data.
BASE_SECTIONS = ("optim", "train")
DENSE_SECTIONS = ("task", "model", "optim", "train")
# What a ticket passes on to its dense run: the data, the network and the optimiser (the paper
# retrains a ticket as its dense run was trained). Never ``train.*``: a ticket's budget,
# evaluation cadence or early stop must not shorten the run its mask comes from; the dense run
# takes the defaults there (the paper's 30k steps) unless ``base.train.*`` says otherwise.
INHERITED_SECTIONS = ("task", "model", "optim")
# ... and of ``train.*`` only what defines the problem learned, not the budget
INHERITED_TRAIN_KEYS = ("train.loss", "train.batch_size")

# Salt of every dense run's content key. Bump it whenever code changes what a stored run holds
# (its numbers, its files or its meaning), so stores never serve runs trained by older code.
# 1: the engine up to the sweeps issue (keys without a salt). 2: per-member early stop.
ENGINE_VERSION = 2


def plain_value(value: Any) -> Any:
    """A JSON-able scalar: NaN as None, numpy / torch scalars as Python ones."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def changed_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two nested settings dicts (sorted)."""
    old_flat, new_flat = flatten_settings(old), flatten_settings(new)
    return sorted(k for k in old_flat.keys() | new_flat.keys()
                  if old_flat.get(k) != new_flat.get(k))


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Convert a CLI string (or a JSON value) to the field's declared type."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in options:
                return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        names = " or ".join("None" if o is type(None) else o.__name__ for o in options)
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")


def _build_section(section: str, values: Mapping[str, Any]) -> Any:
    cls = SECTIONS[section]
    hints = _field_types(cls)
    kwargs = {}
    for name, value in values.items():
        if name not in hints:
            raise ConfigError(f"unknown key {section}.{name}{_closest(section + '.' + name, all_keys())}")
        kwargs[name] = _coerce(f"{section}.{name}", value, hints[name])
    return cls(**kwargs)


def all_keys() -> list[str]:
    """Every dotted key a user can set, e.g. 'optim.lr'."""
    keys = ["recipe"]
    for section, cls in SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    keys += [f"base.{k}" for k in keys if k.split(".")[0] in BASE_SECTIONS]
    return keys


def key_help() -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every settable key."""
    rows = [("recipe", "dense", f"experiment recipe: {', '.join(RECIPES)}")]
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((f"{section}.{f.name}", f.default, f.metadata.get("help", "")))
    rows.append(("base.optim.*", "(ticket's)",
                 "optimiser of the dense run behind a ticket (default: the ticket's optim.*)"))
    rows.append(("base.train.*", "(defaults)",
                 "training of the dense run behind a ticket (default: the train.* defaults, "
                 "never the ticket's own budget, cadence or early stop)"))
    return rows


def parse_override(text: str) -> tuple[str, str]:
    """Split 'key=value' into its parts; ConfigError on malformed input."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or "." not in key and key != "recipe":
        raise ConfigError(f"malformed override {text!r}: expected key=value, e.g. optim.lr=0.01")
    return key, value.strip()


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"conflicting override for {key}")
        node[parts[-1]] = value
    return nested


def flatten_settings(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optim': {'lr': 1}} -> {'optim.lr': 1} (any depth)."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _base_field(key: str) -> Any:
    """Type of the dense-run setting 'section.name' (given without 'base.'); ConfigError if a
    ticket's dense run may not differ there or no such field exists."""
    section, _, name = key.partition(".")
    if section not in BASE_SECTIONS:
        raise ConfigError(
            f"base.{key}: a ticket's dense run may differ only in "
            f"{' / '.join(BASE_SECTIONS)} settings (same task and model)")
    hints = _field_types(SECTIONS[section])
    if name not in hints:
        raise ConfigError(f"unknown key base.{key}{_closest('base.' + key, all_keys())}")
    return hints[name]


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: recipe plus task, model, optimiser, training and pruning settings.

    ``base`` holds dotted overrides (under ``optim`` / ``train``) for the dense run a ticket is
    taken from; by default that run has the ticket's task, model and optimiser, and the default
    training settings (see ``INHERITED_SECTIONS``).
    """

    recipe: str = "dense"
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    norm_control: NormControlConfig = field(default_factory=NormControlConfig)
    edge_popup: EdgePopupConfig = field(default_factory=EdgePopupConfig)
    base: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        choice("recipe", self.recipe, RECIPES)
        if self.base and self.recipe == "dense":
            raise ConfigError("base.*: only a ticket has a dense base run; drop the base.* keys")
        for key in self.base:
            _base_field(key)
        if self.train.fourier_entropy is not None and (
                self.model.name != "mlp" or self.task.name != "modular"):
            raise ConfigError("train.fourier_entropy: needs model.name=mlp on task.name=modular "
                              "(the Fourier entropy is defined on the effective input weights "
                              "W_emb W_in over the residues)")
        self._check_task_fits()
        if self.recipe == "edge_popup":
            self._check_edge_popup()
        elif self.recipe in MASK_RECIPES:
            base = self.dense_base()
            step = self.prune.step
            if step != "final" and step not in base.train.checkpoint_steps():
                raise ConfigError(
                    f"prune.step: {step} is not a checkpoint of the dense run (steps 0..."
                    f"{base.train.steps}, every {base.train.checkpoint_every}, or 'final')")

    def _check_task_fits(self) -> None:
        """The model takes the task's inputs and the loss its targets."""
        task, model = self.task.name, self.model.name
        fits = {"lstm": SEQUENCE_TASKS, "transformer": ("modular",)}
        if task in VECTOR_TASKS and model != "mlp":
            raise ConfigError(f"model.name: task.name={task} takes model.name=mlp (a "
                              "feature-vector MLP)")
        if model in fits and task not in fits[model]:
            raise ConfigError(f"model.name: {model} takes task.name={' or '.join(fits[model])}")
        if task in SEQUENCE_TASKS and model != "lstm":
            raise ConfigError(f"model.name: task.name={task} takes model.name=lstm")
        if task in VECTOR_TASKS and self.model.d_emb is not None:
            raise ConfigError(f"model.d_emb: task.name={task} has no embedding; "
                              "model.d_hidden sets the width of its hidden layers")
        if self.task.regression and self.loss != "mse":
            raise ConfigError(f"train.loss: task.name={task} is a regression; it takes mse")

    @property
    def loss(self) -> str:
        """The training loss: ``train.loss``, else the task's (mse for regression)."""
        if self.train.loss is not None:
            return self.train.loss
        return "mse" if self.task.regression else "cross_entropy"

    def _check_edge_popup(self) -> None:
        """Edge-popup learns its own scores from theta_mem: the mask settings of a ticket would
        be silently ignored, so they are refused; theta_mem must be a kept checkpoint."""
        defaults = PruneConfig()
        for key in ("method", "step", "scope", "synflow_input"):
            if getattr(self.prune, key) != getattr(defaults, key):
                raise ConfigError(
                    f"prune.{key}: does not apply to recipe edge_popup (its scores are learned "
                    f"from theta_mem at edge_popup.start_step, ranked per tensor); only "
                    f"prune.rate does")
        base = self.dense_base()
        start = self.edge_popup.start_step
        if start not in base.train.checkpoint_steps():
            raise ConfigError(
                f"edge_popup.start_step: {start} is not a checkpoint of the dense run (steps "
                f"0...{base.train.steps}, every {base.train.checkpoint_every}); set "
                f"base.train.checkpoint_every or base.train.steps so that it keeps step {start}")

    @property
    def needs_dense_base(self) -> bool:
        """Whether this recipe needs a trained dense run (not a ticket pruned at init)."""
        return self.recipe in MASK_RECIPES and not (
            self.recipe != "edge_popup" and self.prune.at_init)

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentConfig":
        """Build from a nested dict (or one with dotted keys), validating every field."""
        nested = _nest(flatten_settings(data))
        unknown = set(nested) - set(SECTIONS) - {"recipe", "base"}
        for name in sorted(unknown):
            raise ConfigError(f"unknown key {name}{_closest(name, all_keys())}")
        sections = {}
        for section in SECTIONS:
            values = nested.get(section, {})
            if not isinstance(values, Mapping):
                raise ConfigError(f"{section}: expected a group of keys like {section}.<name>=...")
            sections[section] = _build_section(section, values)
        base_flat = flatten_settings(nested.get("base", {}))
        base = {}
        for key, value in sorted(base_flat.items()):
            base[key] = _coerce(f"base.{key}", value, _base_field(key))
        recipe = nested.get("recipe", "dense")
        if not isinstance(recipe, str):
            raise ConfigError(f"recipe: expected a string, got {recipe!r}")
        return cls(recipe=recipe, base=base, **sections)

    def with_overrides(self, overrides: typing.Iterable[str]) -> "ExperimentConfig":
        """Apply 'key=value' strings (``--set``) and validate the result."""
        flat = self.to_flat()
        for text in overrides:
            key, value = parse_override(text)
            flat[key] = value
        return ExperimentConfig.from_dict(flat)

    def replace(self, **changes: Any) -> "ExperimentConfig":
        """Copy with dotted-key changes, e.g. ``replace(**{"prune.rate": 0.7})``."""
        flat = self.to_flat()
        flat.update(changes)
        return ExperimentConfig.from_dict(flat)

    # --- views ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-serialisable)."""
        out: dict[str, Any] = {"recipe": self.recipe}
        for section in SECTIONS:
            out[section] = dataclasses.asdict(getattr(self, section))
        out["base"] = _nest(dict(self.base)) if self.base else {}
        return out

    def to_flat(self) -> dict[str, Any]:
        """Dotted-key dict of every field."""
        flat = flatten_settings({k: v for k, v in self.to_dict().items() if k != "base"})
        flat.update({f"base.{k}": v for k, v in self.base.items()})
        return flat

    def dense_base(self) -> "ExperimentConfig":
        """The dense run a ticket is taken from: the ticket's task, model and optimiser, default
        training settings, then the base.* overrides (``INHERITED_SECTIONS``)."""
        flat = {k: v for k, v in self.to_flat().items()
                if k.split(".")[0] in INHERITED_SECTIONS or k in INHERITED_TRAIN_KEYS}
        if self.recipe == "edge_popup":  # theta_mem is the end of a short run, by default
            flat["train.steps"] = self.edge_popup.start_step
        flat.update(self.base)
        flat["recipe"] = "dense"
        return ExperimentConfig.from_dict(flat)

    def non_default(self, sections: typing.Iterable[str] = DENSE_SECTIONS) -> dict[str, Any]:
        """Dotted keys of ``sections`` whose value differs from the default."""
        defaults = ExperimentConfig().to_flat()
        flat = self.to_flat()
        return {k: v for k, v in sorted(flat.items())
                if k.split(".")[0] in sections and defaults.get(k) != v}

    def dense_key(self) -> str:
        """Content key of this config's dense training run (seed excluded).

        A hash of ``ENGINE_VERSION`` and the non-default task / model / optim / train fields
        only, so adding a field with a default never changes existing keys, and a new engine
        never reuses runs of an old one.
        """
        if self.recipe != "dense":
            return self.dense_base().dense_key()
        canonical = json.dumps({"engine": ENGINE_VERSION, **self.non_default(DENSE_SECTIONS)},
                               sort_keys=True)
        return "dense-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def typed_override(text: str) -> tuple[str, Any]:
    """('section.field', value converted to the field's type) for a 'key=value' string;
    ConfigError for an unknown key (closest suggested) or a value of the wrong type."""
    key, value = parse_override(text)
    parts = key.split(".")
    if parts[0] == "base":
        return key, _coerce(key, value, _base_field(key.partition(".")[2]))
    if len(parts) == 2 and parts[0] in SECTIONS:
        section, name = parts
    elif key == "recipe":
        choice("recipe", value, RECIPES)
        return key, value
    else:
        raise ConfigError(f"unknown key {key}{_closest(key, all_keys())}")
    hints = _field_types(SECTIONS[section])
    if name not in hints:
        raise ConfigError(f"unknown key {key}{_closest(key, all_keys())}")
    return key, _coerce(key, value, hints[name])
