"""Shared fixtures: small, fast configs (p=13, a few hundred steps)."""
import dataclasses

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


GROKKING_OVERRIDES = [
    "task.p=23", "task.pairs=all", "task.train_fraction=0.5", "model.d_emb=64",
    "model.d_hidden=32", "optim.lr=0.01", "train.steps=1000", "train.eval_every=10",
    "train.checkpoint_every=250"]


@pytest.fixture
def grokking_config() -> ExperimentConfig:
    """(a+b) mod 23 that memorises by step ~35 and generalises by step ~700 (about 1 s)."""
    return ExperimentConfig().with_overrides(GROKKING_OVERRIDES)


def as_ticket(config: ExperimentConfig, *overrides: str) -> ExperimentConfig:
    """A ticket of ``config`` whose dense run trains as ``config`` does: a ticket's own
    ``train.*`` never reaches its dense run, so the test's small budget goes to ``base.train``."""
    train = [f"base.train.{key}={value}" for key, value in
             dataclasses.asdict(config.train).items() if value is not None]
    return config.with_overrides(["recipe=ticket", *train, *overrides])


def run_grok(*args, timeout=600, env=None):
    """Run the real `grok` entry point in a subprocess (as a user would)."""
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "sweeps.cli", *map(str, args)]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=timeout)
