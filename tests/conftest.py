"""Shared fixtures: small, fast configs (p=13, a few hundred steps)."""
import pytest
import torch

from grok_core.config import ExperimentConfig

torch.set_num_threads(1)


@pytest.fixture
def small_config() -> ExperimentConfig:
    """A dense MLP on (a+b) mod 13 that trains in well under a second."""
    return ExperimentConfig().with_overrides([
        "task.p=13", "model.d_emb=32", "model.d_hidden=16", "train.steps=200",
        "train.eval_every=5", "train.checkpoint_every=50", "optim.lr=0.01"])
