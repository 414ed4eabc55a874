"""One experiment's config: the recipe and its sections, the dense run behind it, its key.

``ExperimentConfig`` holds a recipe name and one dataclass per section
(``grok_core.config.sections``); it checks what no single section can (the model takes the
task's inputs; a ticket's mask step is a checkpoint of its dense run). What it needs to know of
a recipe is the recipe's ``RecipeTraits`` (``grok_core.config.names``). ``dense_base`` is the
dense run a ticket is taken from and ``dense_key`` the content key under which a dense run is
stored: a hash of ``ENGINE_VERSION`` and the settings that differ from the defaults.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ConfigError, choice, closest
from .names import (RECIPE_TRAITS, RECIPES, SEQUENCE_TASKS, VECTOR_TASKS, RecipeTraits,
                    task_model)
from .overrides import (all_keys, base_field_type, build_section, coerce, flatten_settings,
                        nest_settings, parse_override)
from .sections import (DENSE_SECTIONS, INHERITED_SECTIONS, INHERITED_TRAIN_KEYS, SECTIONS,
                       EdgePopupConfig, ModelConfig, NormControlConfig, OptimConfig, PruneConfig,
                       TaskConfig, TrainConfig, field_defaults)

# Salt of every dense run's content key. Bump it whenever code changes what a stored run holds
# (its numbers, its files or its meaning), so stores never serve runs trained by older code.
# 1: the engine up to the sweeps issue (keys without a salt). 2: per-member early stop.
# 3: subnormal floats flushed to zero on CPU (``grok_core.training.flush_subnormals``).
ENGINE_VERSION = 3
# A further salt per model, for changes that alter one model's numbers only (the others' stored
# runs stay valid). Keys: ``model.name``; "mlp" is eq. (1)'s MLP on the token tasks only (the
# vector tasks' MLP is another network). transformer 2: the token-table forward with a
# hand-written backward; 3: its per-example passes and loss by the compiled kernels
# (``grok_core.native``) on a CPU, its tables by one product per position. mlp 2: its
# cross-entropy by the kernels' (``native.cross_entropy_rows``, the transformer's: its own
# exponential and float64 sum) on logits [K, N, C], where PyTorch's exp and sum ran on [K, C, N].
MODEL_ENGINE_VERSIONS = {"transformer": 3, "mlp": 2}


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
        if self.base and not self.traits.from_dense:
            raise ConfigError("base.*: only a ticket has a dense base run; drop the base.* keys")
        for key in self.base:
            base_field_type(key)
        if self.train.fourier_entropy is not None and (
                self.model.name != "mlp" or self.task.name != "modular"):
            raise ConfigError("train.fourier_entropy: needs model.name=mlp on task.name=modular "
                              "(the Fourier entropy is defined on the effective input weights "
                              "W_emb W_in over the residues)")
        self._check_task_fits()
        if self.traits.from_dense:
            self._check_refused_keys()
            self._check_start_step()

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
        if task not in VECTOR_TASKS and (
                self.model.activation != "relu" or self.model.hidden_layers is not None):
            raise ConfigError(f"model.activation / model.hidden_layers: apply to the MLP of a "
                              f"vector task ({', '.join(VECTOR_TASKS)}), not task.name={task}")
        if task in VECTOR_TASKS and self.model.d_emb is not None:
            raise ConfigError(f"model.d_emb: task.name={task} has no embedding; "
                              "model.d_hidden sets the width of its hidden layers")
        if self.task.regression and self.loss != "mse":
            raise ConfigError(f"train.loss: task.name={task} is a regression; it takes mse")

    def _check_refused_keys(self) -> None:
        """The prune.* keys that do not apply to this recipe keep their defaults (edge-popup
        learns its own mask: a ticket's mask settings would be silently ignored)."""
        for key in self.traits.refused_keys:
            section, name = key.split(".")
            if getattr(getattr(self, section), name) != field_defaults(SECTIONS[section])[name]:
                raise ConfigError(f"{key}: does not apply to recipe {self.recipe} "
                                  f"({self.traits.refused_reason}); only prune.rate does")

    def _check_start_step(self) -> None:
        """The dense step the recipe starts from is a checkpoint the dense run keeps."""
        traits, step = self.traits, self.start_step
        base = self.dense_base()  # first: it validates the base.* settings too
        if (traits.start_may_be_final and step == "final") or step in base.train.checkpoint_steps():
            return
        where = f"steps 0...{base.train.steps}, every {base.train.checkpoint_every}"
        if traits.start_may_be_final:
            raise ConfigError(f"{traits.start_key}: {step} is not a checkpoint of the dense run "
                              f"({where}, or 'final')")
        raise ConfigError(f"{traits.start_key}: {step} is not a checkpoint of the dense run "
                          f"({where}); set base.train.checkpoint_every or base.train.steps so "
                          f"that it keeps step {step}")

    @property
    def traits(self) -> RecipeTraits:
        """What the configs and the loop know of this recipe (``RECIPE_TRAITS``)."""
        return RECIPE_TRAITS[self.recipe]

    @property
    def loss(self) -> str:
        """The training loss: ``train.loss``, else the task's (mse for regression)."""
        if self.train.loss is not None:
            return self.train.loss
        return "mse" if self.task.regression else "cross_entropy"

    @property
    def start_step(self) -> int | str | None:
        """The dense run's step this recipe starts from (``traits.start_key``: ``prune.step``
        for a ticket, ``edge_popup.start_step`` for edge-popup); None for a dense run."""
        if self.traits.start_key is None:
            return None
        section, name = self.traits.start_key.split(".")
        return getattr(getattr(self, section), name)

    @property
    def needs_dense_base(self) -> bool:
        """Whether this recipe needs a trained dense run (not a ticket pruned at init)."""
        return self.traits.from_dense and self.start_step != 0

    @property
    def learns_masks(self) -> bool:
        """Whether training learns the members' masks (edge-popup's scores) rather than keeping
        fixed ones (dense runs, tickets, norm controls, edge-popup's plain 'wd' variant)."""
        return self.traits.learns_masks and self.edge_popup.learns_scores

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentConfig":
        """Build from a nested dict (or one with dotted keys), validating every field."""
        nested = nest_settings(flatten_settings(data))
        unknown = set(nested) - set(SECTIONS) - {"recipe", "base"}
        for name in sorted(unknown):
            raise ConfigError(f"unknown key {name}{closest(name, all_keys())}")
        sections = {}
        for section in SECTIONS:
            values = nested.get(section, {})
            if not isinstance(values, Mapping):
                raise ConfigError(f"{section}: expected a group of keys like {section}.<name>=...")
            sections[section] = build_section(section, values)
        base_flat = flatten_settings(nested.get("base", {}))
        if nested.get("model", {}).get("name") is None:  # not given: the task's own model
            sections["model"] = dataclasses.replace(
                sections["model"], name=task_model(sections["task"].name))
        base = {}
        for key, value in sorted(base_flat.items()):
            base[key] = coerce(f"base.{key}", value, base_field_type(key))
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
        out["base"] = nest_settings(dict(self.base)) if self.base else {}
        return out

    def to_flat(self) -> dict[str, Any]:
        """Dotted-key dict of every field."""
        flat = flatten_settings({k: v for k, v in self.to_dict().items() if k != "base"})
        if flat["model.name"] == task_model(self.task.name):
            # the task's own model is written as "not given", so that changing task.name on a
            # copy (--set task.name=text) takes the new task's model, and a run's key does not
            # depend on whether its model was named
            flat["model.name"] = None
        flat.update({f"base.{k}": v for k, v in self.base.items()})
        return flat

    def dense_base(self) -> "ExperimentConfig":
        """The dense run a ticket is taken from: the ticket's task, model and optimiser, default
        training settings, then the base.* overrides (``INHERITED_SECTIONS``)."""
        flat = {k: v for k, v in self.to_flat().items()
                if k.split(".")[0] in INHERITED_SECTIONS or k in INHERITED_TRAIN_KEYS}
        if self.traits.dense_steps_from_start:  # theta_mem is the end of a short run, by default
            flat["train.steps"] = self.start_step
        if self.traits.learns_masks and self.edge_popup.mem_split_seed is not None:
            flat["task.split_seed"] = self.edge_popup.mem_split_seed  # the leakage reading
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

        A hash of ``ENGINE_VERSION`` (and the model's ``MODEL_ENGINE_VERSIONS`` entry, if any)
        and the non-default task / model / optim / train fields only, so adding a field with a
        default never changes existing keys, and a new engine never reuses runs of an old one.
        """
        if self.recipe != "dense":
            return self.dense_base().dense_key()
        salt = {"engine": ENGINE_VERSION}
        if self.model.name in MODEL_ENGINE_VERSIONS and self.task.name not in VECTOR_TASKS:
            salt["model_engine"] = MODEL_ENGINE_VERSIONS[self.model.name]
        canonical = json.dumps({**salt, **self.non_default(DENSE_SECTIONS)}, sort_keys=True)
        return "dense-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
