"""Stacked ("cohort") models: every parameter has a leading member dimension K.

A model here is a pure function of a parameter dict, so K independent networks that share an
architecture train as one; member k's slice ``params[name][k]`` is exactly the network a solo
run of that member would have (``cohort``). One model per module:

- ``mlp``: eq. (1)'s MLP on token pairs (exact shortcut and hand-written backward);
- ``transformer``: the one-layer, one-head transformer of App. B.2;
- ``vector_mlp``: the feature-vector tasks' MLPs (digits, MNIST, polynomial, parity);
- ``lstm``: the 2-layer LSTM sentiment classifier of App. J;

their losses are in ``losses``, and ``registry`` is the one table ``build_model`` reads.
Everything public is importable from ``grok_core.models`` itself.
"""
from .cohort import CohortModel, Params, ParamSpec, apply_masks, member_slice, stack_members
from .losses import (cross_entropy_and_accuracy, hinge_and_accuracy, mse_and_accuracy,
                     output_gradient, regression_mse_and_r2, transposed_cross_entropy)
from .lstm import LSTMClassifier
from .mlp import MLP
from .registry import MODEL_REGISTRY, build_model
from .transformer import Transformer
from .vector_mlp import VECTOR_MLP_LAYOUTS, VectorMLP

__all__ = [
    "MLP", "MODEL_REGISTRY", "VECTOR_MLP_LAYOUTS", "CohortModel", "LSTMClassifier", "ParamSpec",
    "Params", "Transformer", "VectorMLP", "apply_masks", "build_model",
    "cross_entropy_and_accuracy", "hinge_and_accuracy", "member_slice", "mse_and_accuracy",
    "output_gradient", "regression_mse_and_r2", "stack_members", "transposed_cross_entropy",
]
