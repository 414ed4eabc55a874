"""Typed, validated experiment configs and dotted overrides (torch-free).

Every setting lives in a frozen dataclass field with a default taken from the paper (see
``docs`` in the README) and a one-line help string. Configs validate themselves at construction
and raise :class:`ConfigError` naming the bad key and the allowed values, so bad input fails before
any work starts. ``ExperimentConfig.with_overrides(["optim.lr=0.01"])`` maps ``--set`` strings onto
the fields; unknown keys get the closest known key suggested.

Where things are:

- ``grok_core.errors``: ``ConfigError``, ``choice`` (closest name suggested),
  ``check_pruning_rate`` (kept outside this package so the data readers can raise them);
- ``names``: the names each setting accepts (tasks, models, recipes, ...), the defaults that
  depend on them, and each recipe's ``RecipeTraits``;
- ``sections``: one dataclass per section (``TaskConfig``, ``ModelConfig``, ...) with its help
  text and checks;
- ``overrides``: dotted keys, ``key=value`` parsing and typing, the key list (``grok keys``);
- ``experiment``: ``ExperimentConfig``, the dense run behind a ticket, content keys.

Everything public is importable from ``grok_core.config`` itself.
"""
from ..errors import ConfigError, check_pruning_rate, choice
from .experiment import ENGINE_VERSION, ExperimentConfig
from .names import (ACTIVATIONS, DEFAULT_TEST_EXAMPLES, DEFAULT_TRAIN_EXAMPLES, DEFAULT_WIDTHS, DIGITS_IMAGES,
                    EDGE_POPUP_VARIANTS, FOURIER_VARIANTS, LOSS_DTYPES, LOSSES, MASK_RECIPES,
                    MODELS, NORMS, OPERATIONS, OPTIMIZERS, PAIR_MODES, PRIME_OPERATIONS,
                    PRUNE_METHODS, PRUNE_SCOPES, RECIPE_TRAITS, RECIPES, REGRESSION_TASKS,
                    SEQUENCE_TASKS, TASK_KEYS, TASKS, TEXT_CORPORA, VECTOR_TASKS, RecipeTraits,
                    task_model)
from .overrides import (all_keys, changed_settings, flatten_settings, key_help, parse_override,
                        plain_value, typed_override)
from .sections import (BASE_SECTIONS, DENSE_SECTIONS, INHERITED_SECTIONS, INHERITED_TRAIN_KEYS,
                       SECTIONS, EdgePopupConfig, ModelConfig, NormControlConfig, OptimConfig,
                       PruneConfig, TaskConfig, TrainConfig, field_defaults, hp, is_prime)

__all__ = [
    "ACTIVATIONS", "BASE_SECTIONS", "DEFAULT_TEST_EXAMPLES", "DEFAULT_TRAIN_EXAMPLES", "DEFAULT_WIDTHS",
    "DENSE_SECTIONS", "DIGITS_IMAGES", "EDGE_POPUP_VARIANTS", "ENGINE_VERSION",
    "FOURIER_VARIANTS", "INHERITED_SECTIONS", "INHERITED_TRAIN_KEYS", "LOSS_DTYPES", "LOSSES",
    "MASK_RECIPES", "MODELS", "NORMS", "OPERATIONS", "OPTIMIZERS", "PAIR_MODES",
    "PRIME_OPERATIONS", "PRUNE_METHODS", "PRUNE_SCOPES", "RECIPE_TRAITS", "RECIPES",
    "REGRESSION_TASKS", "SECTIONS", "SEQUENCE_TASKS", "TASK_KEYS", "TASKS", "TEXT_CORPORA",
    "VECTOR_TASKS",
    "ConfigError", "EdgePopupConfig", "ExperimentConfig", "ModelConfig", "NormControlConfig",
    "OptimConfig", "PruneConfig", "RecipeTraits", "TaskConfig", "TrainConfig",
    "all_keys", "changed_settings", "check_pruning_rate", "choice", "field_defaults",
    "flatten_settings", "hp", "is_prime", "key_help", "parse_override", "plain_value",
    "task_model", "typed_override",
]
