"""The settings, one frozen dataclass per section: ``task``, ``model``, ``optim``, ``train``,
``prune``, ``norm_control``, ``edge_popup``.

Every field has a default taken from the paper and a one-line help string (``hp``; shown by
``grok keys``). A section validates itself at construction and raises ``ConfigError`` naming the
bad key and what it takes; checks across sections (does the model fit the task?) are
``ExperimentConfig``'s (``grok_core.config.experiment``). ``SECTIONS`` lists them by the name a
dotted key starts with; the groupings below it say which sections make a dense run and what a
ticket passes on to the dense run it is taken from.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ..errors import ConfigError, check_pruning_rate, choice
from ..idx import check_mnist_folder
from ..text import check_aclimdb_folder, check_marker_sizes
from .names import (ACTIVATIONS, DEFAULT_MODEL, DEFAULT_TEST_EXAMPLES, DEFAULT_TRAIN_EXAMPLES,
                    DEFAULT_WIDTHS, DIGITS_IMAGES, EDGE_POPUP_VARIANTS, FOURIER_VARIANTS,
                    LOSS_DTYPES, LOSSES, MODELS, NORMS, OPERATIONS, OPTIMIZERS, PAIR_MODES,
                    PRIME_OPERATIONS, PRUNE_METHODS, PRUNE_SCOPES, REGRESSION_TASKS, TASK_KEYS,
                    TASKS, TEXT_CORPORA)


def hp(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help string (shown by ``grok keys``)."""
    return field(default=default, metadata={"help": help})


def field_defaults(cls: type) -> dict[str, Any]:
    """{field name: default} of a config dataclass (without constructing one)."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def is_prime(n: int) -> bool:
    """True if n is a prime number."""
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


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
                                  "label: more positive than negative sentiment words), "
                                  "'marker_parity' (sequences of random filler words generated "
                                  "from task.split_seed, label: the parity of which of "
                                  "task.markers marker words occur; memorised first, generalised "
                                  "late) or 'aclimdb' (the IMDb reviews in task.data_dir; 25% "
                                  "of all reviews test)")
    vocab_size: int = hp(1000, "text: the most frequent words kept (others become one "
                               "unknown-word token)")
    seq_len: int = hp(500, "text: tokens per review (the last ones kept, short reviews padded "
                           "at the front)")
    markers: int = hp(2, "text with task.corpus=marker_parity: marker words whose presence "
                         "parity is the label (at most task.seq_len, fewer than "
                         "task.vocab_size)")

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
            available = check_mnist_folder(self.data_dir)["train_images"][0]
            if self.train_examples > available:
                raise ConfigError(f"task.n_train: {self.train_examples} is more than the "
                                  f"{available} training images in {self.data_dir}")
        if self.name == "text" and self.corpus == "aclimdb":
            check_aclimdb_folder(self.data_dir)
        if self.name == "text" and self.corpus == "marker_parity":
            check_marker_sizes(self.markers, self.vocab_size, self.seq_len)
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

    name: Optional[str] = hp(None, "model: 'mlp' (eq. 1; on vector tasks the task's MLP), "
                                   "'transformer' (one layer, one head; modular) or 'lstm' (2 "
                                   "layers; text); None: the task's model (lstm for text, mlp "
                                   "for every other task)")
    d_emb: Optional[int] = hp(None, "embedding / residual width (default: mlp 500, transformer "
                                    "128, lstm 64)")
    d_hidden: Optional[int] = hp(None, "hidden width (default: mlp 48 on modular, the task's "
                                       "widths on vector tasks, every hidden layer this wide "
                                       "when set; transformer d_mlp 128; lstm 128)")
    init_scale: float = hp(1.0, "kappa: weights ~ N(0, (kappa/sqrt(fan_in))^2)")
    pos_embed: bool = hp(True, "transformer only: learned positional embedding W_pos (paper)")
    biases: bool = hp(True, "transformer only: MLP biases b_in, b_out (paper)")
    activation: str = hp("relu", "vector tasks' MLP: 'relu', or 'quadratic' phi(h) = h + h^2 / 2 "
                                 "(Kumar et al. 2023's network, whose quadratic part can fit "
                                 "the polynomial task exactly)")
    hidden_layers: Optional[int] = hp(None, "vector tasks' MLP: this many hidden layers, each "
                                            "model.d_hidden wide (default: the widest of the "
                                            "task's layers); None: the task's own layers")

    def __post_init__(self) -> None:
        if self.name is None:  # alone, a model knows no task: ExperimentConfig picks the task's
            object.__setattr__(self, "name", DEFAULT_MODEL)
        choice("model.name", self.name, MODELS)
        choice("model.activation", self.activation, ACTIVATIONS)
        for key in ("d_emb", "d_hidden", "hidden_layers"):
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

    mem_split_seed: Optional[int] = hp(None, "the split seed theta_mem's dense run trained "
                                             "on (None: task.split_seed, edge-popup's own "
                                             "split). Another value is the authors' Table 1 "
                                             "script: edge-popup then trains and is tested on "
                                             "another split than theta_mem learned, so part of "
                                             "its test pairs were theta_mem's training pairs "
                                             "(leakage)")

    def __post_init__(self) -> None:
        choice("edge_popup.variant", self.variant, EDGE_POPUP_VARIANTS)
        if self.start_step < 1:
            raise ConfigError(f"edge_popup.start_step: must be at least 1, got {self.start_step}")
        if self.mem_split_seed is not None and self.mem_split_seed < 0:
            raise ConfigError(f"edge_popup.mem_split_seed: must be at least 0, got "
                              f"{self.mem_split_seed}")

    @property
    def learns_scores(self) -> bool:
        """Whether training learns scores that choose the weights ('ep', 'ep_wd'), rather than
        training the weights under a fixed mask ('wd')."""
        return self.variant != "wd"

    @property
    def trains_weights(self) -> bool:
        """Whether the weights train ('ep_wd', 'wd'), rather than staying frozen ('ep')."""
        return self.variant != "ep"


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
