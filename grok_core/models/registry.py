"""The one table of models: ``model.name`` -> the model class for each kind of input.

A dataset's ``kind`` says what its inputs are ('tokens': pairs of token ids; 'vectors': feature
vectors; 'sequences': token sequences), so ``mlp`` names eq. (1)'s MLP on modular arithmetic
and the task's own MLP on a vector task. Adding a model is one module in this package, one line
here and its name in ``grok_core.config.MODELS`` (a test checks that the two agree).
"""
from __future__ import annotations

from ..config import ModelConfig
from .cohort import CohortModel
from .lstm import LSTMClassifier
from .mlp import MLP
from .transformer import Transformer
from .vector_mlp import VectorMLP

MODEL_REGISTRY: dict[str, dict[str, type[CohortModel]]] = {
    "mlp": {"tokens": MLP, "vectors": VectorMLP},
    "transformer": {"tokens": Transformer},
    "lstm": {"sequences": LSTMClassifier},
}


def build_model(config: ModelConfig, vocab: int, classes: int, kind: str = "tokens",
                loss: str = "cross_entropy", task: str = "modular") -> CohortModel:
    """The registered model named ``config.name`` for inputs of ``kind`` ('tokens': pairs of
    ``vocab`` tokens; 'vectors': ``vocab`` features, the MLP of ``task``; 'sequences': token
    sequences over ``vocab`` ids), with its loss."""
    by_kind = MODEL_REGISTRY[config.name]
    if kind not in by_kind:
        raise ValueError(f"model {config.name!r} takes {' or '.join(by_kind)} inputs, not {kind}")
    return by_kind[kind].build(config, vocab, classes, loss, task)
