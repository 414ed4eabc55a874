"""Datasets, one builder per ``task.name``.

``modular``: c = op(a, b) mod p over a set of (a, b) pairs. Pairs are enumerated
deterministically, shuffled with the task's split seed (not the model seed), and the first
``train_fraction`` of them form the training split. Inputs are token pairs.

``digits``: the 1797 8x8 images of handwritten digits that scikit-learn ships (no download),
pixels scaled to [0, 1]; shuffled with the split seed, the first ``n_train`` (1000) train. The
offline stand-in for Omnigrok's MNIST setting. Inputs are feature vectors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .config import ConfigError, TaskConfig


def _inverse_table(p: int) -> np.ndarray:
    return np.array([pow(int(b), -1, p) if b else 0 for b in range(p)], dtype=np.int64)


def _operation(op: str, p: int, table_seed: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if op == "add":
        return lambda a, b: (a + b) % p
    if op == "sub":
        return lambda a, b: (a - b) % p
    if op == "mul":
        return lambda a, b: (a * b) % p
    if op == "div":
        inverse = _inverse_table(p)
        return lambda a, b: (a * inverse[b]) % p
    if op == "x2_plus_y2":
        return lambda a, b: (a * a + b * b) % p
    if op == "x2_xy_y2":
        return lambda a, b: (a * a + a * b + b * b) % p
    if op == "x3_xy":
        return lambda a, b: (a ** 3 + a * b) % p
    if op == "random":
        table = np.random.default_rng(table_seed).integers(0, p, size=(p, p))
        return lambda a, b: table[a, b]
    raise KeyError(op)  # configs validate op names; reaching here is a programming error


def enumerate_pairs(p: int, pairs: str, op: str) -> tuple[np.ndarray, np.ndarray]:
    """All (a, b) of the pair mode in lexicographic order; b = 0 is dropped for division."""
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    keep = {"gt": a > b, "ge": a >= b, "all": np.ones_like(a, dtype=bool)}[pairs]
    if op == "div":
        keep &= b != 0
    return a[keep], b[keep]


@dataclass(frozen=True)
class Split:
    """Inputs and labels of one split: ``inputs`` is [n, 2] token ids (a, b) for token tasks,
    [n, features] floats for vector tasks."""

    inputs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> "Split":
        """Copy of the split on ``device``."""
        return Split(self.inputs.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    """Train and test splits of one task and its shape: ``kind`` 'tokens' (``vocab`` the
    number of tokens) or 'vectors' (``vocab`` the number of input features), ``classes``."""

    train: Split
    test: Split
    vocab: int
    classes: int
    kind: str = "tokens"


def task_shape(task: TaskConfig) -> tuple[str, int, int]:
    """(kind, vocab or features, classes) of a task without building its data."""
    if task.name == "digits":
        return "vectors", 64, 10
    if task.name == "mnist":
        from .idx import MNIST_FILES, find_file, read_header

        rows, cols = read_header(find_file(task.data_dir, MNIST_FILES["train_images"]))[1:]
        return "vectors", rows * cols, 10
    return "tokens", task.p, task.p


def build_dataset(task: TaskConfig) -> Dataset:
    """The task's train and test splits (no network; ``digits`` reads scikit-learn's copy)."""
    return DATASET_BUILDERS[task.name](task)


def digits_dataset(task: TaskConfig) -> Dataset:
    """scikit-learn's 8x8 digits, pixels / 16, split by ``task.split_seed``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    n_train = task.train_images  # fewer than the images: checked by the config
    order = np.random.default_rng(task.split_seed).permutation(len(data.target))
    inputs = torch.from_numpy((data.data[order] / 16.0).astype(np.float32))
    labels = torch.from_numpy(data.target[order].astype(np.int64))
    return Dataset(train=Split(inputs[:n_train].contiguous(), labels[:n_train].contiguous()),
                   test=Split(inputs[n_train:].contiguous(), labels[n_train:].contiguous()),
                   vocab=inputs.shape[1], classes=10, kind="vectors")


def mnist_dataset(task: TaskConfig) -> Dataset:
    """MNIST from the IDX files in ``task.data_dir``: ``n_train`` (1000) images drawn from the
    training files by ``task.split_seed``, tested on the test files (the authors' code swapped
    the two); pixels / 255, flattened."""
    from .idx import read_mnist

    arrays = read_mnist(task.data_dir)
    available = len(arrays["train_labels"])  # at least task.train_images: checked by the config
    pick = np.random.default_rng(task.split_seed).permutation(available)[:task.train_images]

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
        return Split(torch.from_numpy(flat), torch.from_numpy(labels.astype(np.int64)))

    train = split(arrays["train_images"][pick], arrays["train_labels"][pick])
    test = split(arrays["test_images"], arrays["test_labels"])
    return Dataset(train=train, test=test, vocab=train.inputs.shape[1], classes=10,
                   kind="vectors")


def modular_dataset(task: TaskConfig) -> Dataset:
    """Generate the task's pairs, labels and train/test split (no I/O, no network)."""
    a, b = enumerate_pairs(task.p, task.pairs, task.op)
    labels = _operation(task.op, task.p, task.table_seed)(a, b)
    order = np.random.default_rng(task.split_seed).permutation(len(a))
    n_train = int(task.train_fraction * len(a))
    if n_train < 1 or n_train >= len(a):
        raise ConfigError(
            f"task.train_fraction: {task.train_fraction} of {len(a)} pairs leaves an empty split")
    inputs = torch.from_numpy(np.stack([a, b], axis=1)[order])
    targets = torch.from_numpy(np.asarray(labels)[order])
    return Dataset(
        train=Split(inputs[:n_train].contiguous(), targets[:n_train].contiguous()),
        test=Split(inputs[n_train:].contiguous(), targets[n_train:].contiguous()),
        vocab=task.p,
        classes=task.p,
    )


DATASET_BUILDERS = {"modular": modular_dataset, "digits": digits_dataset, "mnist": mnist_dataset}
