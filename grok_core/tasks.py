"""Datasets, one builder per ``task.name``.

``modular``: c = op(a, b) mod p over a set of (a, b) pairs. Pairs are enumerated
deterministically, shuffled with the task's split seed (not the model seed), and the first
``train_fraction`` of them form the training split. Inputs are token pairs.

``digits``: the 1797 8x8 images of handwritten digits that scikit-learn ships (no download),
pixels scaled to [0, 1]; shuffled with the split seed, the first ``n_train`` (1000) train. The
offline stand-in for Omnigrok's MNIST setting. Inputs are feature vectors.

``mnist``: the IDX files in ``task.data_dir`` (training images drawn from the training files,
tested on the test files).

``polynomial``: x ~ N(0, I / dim), y = (beta . x)^2 / 2 with beta ~ N(0, I) (the authors'
variant of Kumar et al.'s task); targets are numbers (a regression).

``parity``: x uniform in {-1, +1}^dim, the label whether the product of ``parity_k`` fixed
coordinates (drawn once from the split seed) is +1.

``text``: binary sentiment of token sequences (``grok_core.text``): a synthetic corpus generated
from the split seed, or the aclImdb reviews in ``task.data_dir``.

Generated tasks draw every part from its own stream of the split seed (numpy's
``default_rng([split_seed, part])``), so changing one size never changes another part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .config import TaskConfig
from .errors import ConfigError
from .idx import MNIST_FILES, find_file, read_header, read_mnist
from .text import aclimdb_dataset, id_count, marker_parity_dataset, synthetic_dataset


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
    [n, features] floats for vector tasks, [n, seq_len] token ids for sequence tasks;
    ``labels`` are class ids, or float targets for a regression."""

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
    number of tokens), 'vectors' (``vocab`` the number of input features) or 'sequences'
    (``vocab`` the number of token ids), ``classes`` (1 for a regression: one output)."""

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
        rows, cols = read_header(find_file(task.data_dir, MNIST_FILES["train_images"]))[1:]
        return "vectors", rows * cols, 10
    if task.name == "polynomial":
        return "vectors", task.dim, 1
    if task.name == "parity":
        return "vectors", task.dim, 2
    if task.name == "text":
        return "sequences", id_count(task.vocab_size), 2
    return "tokens", task.p, task.p


def build_dataset(task: TaskConfig) -> Dataset:
    """The task's train and test splits (no network; ``digits`` reads scikit-learn's copy)."""
    return DATASET_BUILDERS[task.name](task)


def digits_dataset(task: TaskConfig) -> Dataset:
    """scikit-learn's 8x8 digits, pixels / 16, split by ``task.split_seed``."""
    # imported here: scikit-learn takes about a second to import, and only this task needs it
    from sklearn.datasets import load_digits

    data = load_digits()
    n_train = task.train_examples  # fewer than the images: checked by the config
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
    arrays = read_mnist(task.data_dir)
    available = len(arrays["train_labels"])  # at least task.train_examples: checked by the config
    pick = np.random.default_rng(task.split_seed).permutation(available)[:task.train_examples]

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


def _stream(task: TaskConfig, part: int) -> np.random.Generator:
    """The split seed's own random stream for one part of a generated task."""
    return np.random.default_rng([task.split_seed, part])


def polynomial_dataset(task: TaskConfig) -> Dataset:
    """x ~ N(0, I / dim), y = (beta . x)^2 / 2, beta ~ N(0, I): ``n_train`` (100) training and
    ``n_test`` (1000) test points, each from its own stream of the split seed."""
    beta = _stream(task, 0).standard_normal(task.dim)

    def split(part: int, n: int) -> Split:
        x = _stream(task, part).standard_normal((n, task.dim)) / np.sqrt(task.dim)
        y = (x @ beta) ** 2 / 2.0
        return Split(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)))

    return Dataset(train=split(1, task.train_examples), test=split(2, task.test_examples),
                   vocab=task.dim, classes=1, kind="vectors")


def parity_bits(task: TaskConfig) -> np.ndarray:
    """The ``parity_k`` coordinates whose product is the label (fixed by the split seed)."""
    return np.sort(_stream(task, 0).choice(task.dim, size=task.parity_k, replace=False))


def parity_dataset(task: TaskConfig) -> Dataset:
    """x uniform in {-1, +1}^dim; label 1 if the product of the parity bits is +1, else 0;
    ``n_train`` (1000) training and ``n_test`` (1000) test points from separate streams."""
    bits = parity_bits(task)

    def split(part: int, n: int) -> Split:
        x = _stream(task, part).integers(0, 2, size=(n, task.dim)) * 2 - 1
        labels = (np.prod(x[:, bits], axis=1) > 0).astype(np.int64)
        return Split(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(labels))

    return Dataset(train=split(1, task.train_examples), test=split(2, task.test_examples),
                   vocab=task.dim, classes=2, kind="vectors")


def text_dataset(task: TaskConfig) -> Dataset:
    """Token sequences and binary labels: the synthetic sentiment corpus or the marker-parity
    corpus (``n_train`` 1500 / ``n_test`` 500 sequences unless set), or aclImdb (25% of all
    reviews test; ``n_train`` caps the training reviews)."""
    if task.corpus == "aclimdb":
        arrays = aclimdb_dataset(task.data_dir, task.vocab_size, task.seq_len,
                                 split_seed=task.split_seed)
    elif task.corpus == "marker_parity":
        arrays = marker_parity_dataset(task.train_examples, task.test_examples,
                                       task.vocab_size, task.seq_len, task.markers,
                                       seed=task.split_seed)
    else:
        arrays = synthetic_dataset(task.train_examples, task.test_examples, task.vocab_size,
                                   task.seq_len, seed=task.split_seed)
    train_x, train_y, test_x, test_y = arrays
    if task.train_examples is not None:
        train_x, train_y = train_x[:task.train_examples], train_y[:task.train_examples]

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)),
                     torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))

    return Dataset(train=split(train_x, train_y), test=split(test_x, test_y),
                   vocab=id_count(task.vocab_size), classes=2, kind="sequences")


DATASET_BUILDERS = {"modular": modular_dataset, "digits": digits_dataset, "mnist": mnist_dataset,
                    "polynomial": polynomial_dataset, "parity": parity_dataset,
                    "text": text_dataset}
