"""The names a config accepts: tasks, models, recipes, methods, ... and their defaults.

The registries that implement them (``grok_core.tasks.DATASET_BUILDERS``,
``grok_core.models.MODEL_REGISTRY``, ``grok_core.pruning.SCORERS``, the recipes) import torch;
their names are kept here so that a config validates without it (tests check that each
registry holds exactly these names). What the configs need to know of each recipe is one
``RecipeTraits`` entry in ``RECIPE_TRAITS``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# --- tasks ----------------------------------------------------------------------------------
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
    "corpus": ("text",), "vocab_size": ("text",), "seq_len": ("text",), "markers": ("text",),
}
# training / test examples of each task when task.n_train / task.n_test are not given
DEFAULT_TRAIN_EXAMPLES = {"digits": 1000, "mnist": 1000, "polynomial": 100, "parity": 1000,
                          "text": 1500}
DEFAULT_TEST_EXAMPLES = {"polynomial": 1000, "parity": 1000, "text": 500}
TEXT_CORPORA = ("synthetic", "aclimdb", "marker_parity")
DIGITS_IMAGES = 1797         # scikit-learn's 8x8 digits

# --- models, losses, optimisers -----------------------------------------------------------
MODELS = ("mlp", "transformer", "lstm")
# the model a task trains when model.name is not given: an LSTM reads token sequences, every
# other task takes an MLP (eq. 1 on modular arithmetic, the task's own MLP on vector tasks)
TASK_MODELS = {"text": "lstm"}
DEFAULT_MODEL = "mlp"


def task_model(task: str) -> str:
    """The model ``task`` trains unless ``model.name`` says otherwise."""
    return TASK_MODELS.get(task, DEFAULT_MODEL)

# (embedding, hidden) widths of each model when model.d_emb / model.d_hidden are not given
DEFAULT_WIDTHS = {"mlp": (500, 48), "transformer": (128, 128), "lstm": (64, 128)}
LOSSES = ("cross_entropy", "mse", "hinge")
ACTIVATIONS = ("relu", "quadratic")  # of the vector tasks' MLPs
LOSS_DTYPES = ("float32", "float64")
OPTIMIZERS = ("adamw", "sgd")
FOURIER_VARIANTS = ("shannon", "authors")

# --- pruning and the recipes' own settings ------------------------------------------------
PRUNE_METHODS = ("magnitude", "random", "snip", "grasp", "synflow")
PRUNE_SCOPES = ("global", "layer")
NORMS = ("l1", "l2")
EDGE_POPUP_VARIANTS = ("ep", "ep_wd", "wd")


# --- recipes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecipeTraits:
    """What a config (and the training loop) must know of a recipe, declared once.

    The recipe itself (which members it trains) is ``grok_core.recipes``; these traits are what
    validation, the dense base run and the loop's forward read, so that no module asks
    ``recipe == "..."``.
    """

    name: str
    # built from a dense run and a pruning rate: takes prune.rate, --rates and base.* keys
    from_dense: bool = False
    # the dotted key naming the dense run's step it starts from (a kept checkpoint); a start
    # step of 0 needs no trained dense run (theta_0 only)
    start_key: Optional[str] = None
    # the start key also takes 'final' (the dense run's last step)
    start_may_be_final: bool = False
    # the dense run trains to the start step by default (instead of the train.* defaults)
    dense_steps_from_start: bool = False
    # keys that do not apply to it: any value but the default is refused, with this reason
    refused_keys: tuple[str, ...] = ()
    refused_reason: str = ""
    # its masks are learned during training (scores), unless its variant trains plain weights
    learns_masks: bool = False


RECIPE_TRAITS: dict[str, RecipeTraits] = {traits.name: traits for traits in (
    RecipeTraits("dense"),
    RecipeTraits("ticket", from_dense=True, start_key="prune.step", start_may_be_final=True),
    RecipeTraits("norm_control", from_dense=True, start_key="prune.step",
                 start_may_be_final=True),
    RecipeTraits("edge_popup", from_dense=True, start_key="edge_popup.start_step",
                 dense_steps_from_start=True,
                 refused_keys=("prune.method", "prune.step", "prune.scope",
                               "prune.synflow_input"),
                 refused_reason="its scores are learned from theta_mem at "
                                "edge_popup.start_step, ranked per tensor",
                 learns_masks=True),
)}
RECIPES = tuple(RECIPE_TRAITS)
# recipes built from a dense run's weights and a pruning rate: they take pruning rates and a
# base run (a ticket pruned at initialisation needs only the base run's theta_0)
MASK_RECIPES = tuple(name for name, traits in RECIPE_TRAITS.items() if traits.from_dense)
