"""Binary classification of token sequences (App. J): the IMDb reviews of Maas et al. (aclImdb),
a small synthetic sentiment corpus generated from a seed, or the marker-parity corpus (generated,
memorised first and generalised late by an LSTM), all as padded arrays of token ids.

Token ids: 0 is padding, 1 an unknown word, and 2, 3, ... the ``vocab_size`` most frequent words
of the training reviews (descending count, ties in alphabetical order), so a model needs
``id_count(vocab_size) = vocab_size + 2`` embedding rows. Every review keeps its last
``seq_len`` tokens and is padded at the front with 0 (Keras ``pad_sequences`` defaults). Labels
are 1 (positive) and 0 (negative); arrays are int64 numpy arrays.

Sources: ``aclimdb_dataset`` reads the aclImdb folder (train/pos, train/neg, test/pos, test/neg,
one review per .txt file), pools all reviews and splits them by a seeded shuffle;
``synthetic_dataset`` generates reviews as ids directly: filler words plus an odd number of
sentiment words, the label saying whether positive words outnumber negative ones (an LSTM
generalises on it as it fits: no delay); ``marker_parity_dataset`` generates random filler with
up to ``markers`` marker words, the label the parity of which markers occur.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from .errors import ConfigError

PAD, UNKNOWN, FIRST_WORD = 0, 1, 2
ACLIMDB_PARTS = (("train", "pos"), ("train", "neg"), ("test", "pos"), ("test", "neg"))
_WORD = re.compile(r"(?:[^\W_]|')+")  # runs of letters, digits and apostrophes
MAX_SENTIMENT_WORDS = 15  # synthetic reviews hold an odd number, 3 to this, of sentiment words


def id_count(vocab_size: int) -> int:
    """Number of token ids (padding, unknown, then ``vocab_size`` words): the model's vocab."""
    return vocab_size + FIRST_WORD


def tokenize(text: str) -> list[str]:
    """Lowercase words of ``text``: runs of letters, digits and apostrophes, apostrophes at
    either end stripped; aclImdb's ``<br />`` line breaks count as spaces."""
    words = (match.strip("'") for match in _WORD.findall(text.lower().replace("<br />", " ")))
    return [word for word in words if word]


def build_vocabulary(token_lists: Iterable[Sequence[str]], size: int) -> dict[str, int]:
    """Word -> id for the ``size`` most frequent words (ids from 2; ties alphabetical)."""
    counts = Counter(word for tokens in token_lists for word in tokens)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size]
    return {word: FIRST_WORD + rank for rank, (word, _) in enumerate(ranked)}


def encode(token_lists: Sequence[Sequence[str]], vocabulary: dict[str, int],
           seq_len: int) -> np.ndarray:
    """[n, seq_len] int64 ids: each review's last ``seq_len`` tokens, padded at the front."""
    out = np.zeros((len(token_lists), seq_len), dtype=np.int64)
    for row, tokens in enumerate(token_lists):
        ids = [vocabulary.get(word, UNKNOWN) for word in tokens[-seq_len:]]
        if ids:
            out[row, seq_len - len(ids):] = ids
    return out


# --- aclImdb ---------------------------------------------------------------------------------

def _has_review(folder: str) -> bool:
    """True if ``folder`` holds a .txt file (stops at the first: folders hold 12,500)."""
    with os.scandir(folder) as entries:
        return any(entry.name.endswith(".txt") and entry.is_file() for entry in entries)


def check_aclimdb_folder(folder: str) -> None:
    """ConfigError (one line) unless ``folder`` (the aclImdb folder) has train/pos, train/neg,
    test/pos and test/neg, each holding a .txt review; reads no review."""
    if not os.path.isdir(folder):
        raise ConfigError(f"task.data_dir: no folder {folder}")
    for split, label in ACLIMDB_PARTS:
        part = os.path.join(folder, split, label)
        if not os.path.isdir(part):
            raise ConfigError(f"task.data_dir: {folder} has no {split}/{label} folder (expected "
                              "the aclImdb layout: train/pos, train/neg, test/pos, test/neg)")
        if not _has_review(part):
            raise ConfigError(f"task.data_dir: {part} holds no .txt review")


def read_aclimdb(folder: str) -> tuple[list[str], np.ndarray]:
    """Every review of the four aclImdb folders (train before test, pos before neg, sorted file
    names) and its label (1 pos, 0 neg)."""
    check_aclimdb_folder(folder)
    texts, labels = [], []
    for split, label in ACLIMDB_PARTS:
        part = os.path.join(folder, split, label)
        for name in sorted(n for n in os.listdir(part) if n.endswith(".txt")):
            with open(os.path.join(part, name), encoding="utf-8", errors="replace") as handle:
                texts.append(handle.read())
            labels.append(1 if label == "pos" else 0)
    return texts, np.asarray(labels, dtype=np.int64)


def aclimdb_dataset(folder: str, vocab_size: int = 1000, seq_len: int = 500,
                    test_fraction: float = 0.25, split_seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) of all aclImdb reviews pooled and shuffled with
    ``split_seed``: the last round(test_fraction * n) (at least one) are the test split. The
    vocabulary comes from the training reviews only, so no test word leaks into it."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction: must be in (0, 1), got {test_fraction}")
    texts, labels = read_aclimdb(folder)
    n = len(texts)
    n_test = max(1, round(test_fraction * n))
    if n_test >= n:
        raise ConfigError(f"task.data_dir: {n} reviews in {folder} leave none for training")
    order = np.random.default_rng(split_seed).permutation(n)
    train, test = order[:n - n_test], order[n - n_test:]
    tokens = [tokenize(text) for text in texts]
    vocabulary = build_vocabulary((tokens[i] for i in train), vocab_size)
    return (encode([tokens[i] for i in train], vocabulary, seq_len), labels[train],
            encode([tokens[i] for i in test], vocabulary, seq_len), labels[test])


# --- synthetic -------------------------------------------------------------------------------

def synthetic_sentiment_words(vocab_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The (positive, negative) word ids of the synthetic corpus of ``seed``: disjoint sets of
    max(1, vocab_size // 50) ids each, drawn from 2 .. vocab_size + 1."""
    if vocab_size < 3:
        raise ConfigError(f"task.vocab_size: the synthetic corpus needs at least 3 words, got "
                          f"{vocab_size}")
    per_class = max(1, vocab_size // 50)
    # a generator of its own, so the words do not depend on how many reviews are drawn
    words = np.random.default_rng([seed, 0]).permutation(vocab_size)[:2 * per_class] + FIRST_WORD
    return np.sort(words[:per_class]), np.sort(words[per_class:])


def synthetic_labels(inputs: np.ndarray, vocab_size: int, seed: int = 0) -> np.ndarray:
    """The synthetic corpus's rule: 1 where a review's positive words outnumber its negative
    ones, else 0 (reviews of ``synthetic_dataset`` never tie)."""
    positive, negative = synthetic_sentiment_words(vocab_size, seed)
    balance = np.isin(inputs, positive).sum(1) - np.isin(inputs, negative).sum(1)
    return (balance > 0).astype(np.int64)


def synthetic_dataset(n_train: int, n_test: int, vocab_size: int = 1000, seq_len: int = 500,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) of generated reviews, a function of the arguments.

    A review has between max(3, seq_len // 4) and seq_len tokens: filler words drawn Zipf-like
    (the r-th smallest non-sentiment id with probability proportional to 1 / r) and, at
    random places, an odd number (3 to 15) of sentiment words. The label (balanced: drawn first)
    is whether positive words outnumber negative ones, so deciding it takes counting several
    words. Train and test are disjoint draws (generators of their own).
    """
    if seq_len < 3:
        raise ConfigError(f"task.seq_len: synthetic reviews need at least 3 tokens, got {seq_len}")
    positive, negative = synthetic_sentiment_words(vocab_size, seed)
    # one generator per split: the training reviews do not change with n_test
    train_x, train_y = _reviews(np.random.default_rng([seed, 1]), n_train, vocab_size, seq_len,
                                positive, negative)
    test_x, test_y = _reviews(np.random.default_rng([seed, 2]), n_test, vocab_size, seq_len,
                              positive, negative)
    return train_x, train_y, test_x, test_y


def _reviews(rng: np.random.Generator, n: int, vocab_size: int, seq_len: int,
             positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic reviews [n, seq_len] and their labels [n] (balanced: drawn first)."""
    labels = rng.integers(0, 2, n)
    inputs = _filler(rng, n, vocab_size, seq_len, np.concatenate([positive, negative]))
    _place_sentiment_words(rng, inputs, labels, positive, negative)
    return inputs, labels.astype(np.int64)


def _filler(rng: np.random.Generator, n: int, vocab_size: int, seq_len: int,
            sentiment: np.ndarray) -> np.ndarray:
    """[n, seq_len] Zipf-like filler ids, each review of random length, padded at the front."""
    filler = np.setdiff1d(np.arange(FIRST_WORD, id_count(vocab_size)), sentiment)
    weights = 1.0 / np.arange(1, len(filler) + 1)
    inputs = rng.choice(filler, size=(n, seq_len), p=weights / weights.sum())
    lengths = rng.integers(max(3, seq_len // 4), seq_len + 1, n)
    inputs[np.arange(seq_len)[None] < (seq_len - lengths)[:, None]] = PAD
    return inputs


def _place_sentiment_words(rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray,
                           positive: np.ndarray, negative: np.ndarray) -> None:
    """Overwrite an odd number of random real positions of each review with sentiment words,
    a majority of them positive exactly where the label is 1 (so counts never tie)."""
    n, seq_len = inputs.shape
    most = min(MAX_SENTIMENT_WORDS, max(3, seq_len // 4))
    most -= 1 - most % 2  # odd, and no more than the shortest review's length
    count = 2 * rng.integers(1, (most - 1) // 2 + 1, n) + 1  # 3, 5, ..., most
    majority = (count + 1) // 2
    # positive words: majority..count for label 1, 0..majority-1 for label 0 (uniform)
    low = np.where(labels == 1, majority, 0)
    high = np.where(labels == 1, count, majority - 1)
    n_positive = low + np.floor(rng.random(n) * (high - low + 1)).astype(np.int64)
    # random real positions: the smallest random keys, padding keyed out of reach
    keys = rng.random((n, seq_len))
    keys[inputs == PAD] = 2.0
    slots = np.argsort(keys, axis=1)[:, :most]
    column = np.arange(most)[None]
    words = np.where(column < n_positive[:, None], rng.choice(positive, (n, most)),
                     rng.choice(negative, (n, most)))
    used = column < count[:, None]
    rows = np.broadcast_to(np.arange(n)[:, None], slots.shape)
    inputs[rows[used], slots[used]] = words[used]


# --- marker parity ---------------------------------------------------------------------------

def check_marker_sizes(markers: int, vocab_size: int, seq_len: int) -> None:
    """ConfigError (one line) unless the marker-parity corpus can be drawn at these sizes: at
    least one marker, a filler word beside the markers, room for every marker in a sequence."""
    if markers < 1:
        raise ConfigError(f"task.markers: the marker_parity corpus needs at least 1 marker word, "
                          f"got {markers}")
    if vocab_size <= markers:
        raise ConfigError(f"task.vocab_size: the marker_parity corpus needs more words than its "
                          f"{markers} markers (at least one filler word), got {vocab_size}")
    if seq_len < markers:
        raise ConfigError(f"task.seq_len: the marker_parity corpus writes up to {markers} "
                          f"marker words per sequence, so it needs at least {markers} tokens, "
                          f"got {seq_len}")


def marker_words(vocab_size: int, markers: int = 2, seed: int = 0) -> np.ndarray:
    """The ``markers`` marker word ids of the marker-parity corpus of ``seed`` (sorted), drawn
    from 2 .. vocab_size + 1; every other word is filler. Sizes as ``check_marker_sizes``
    allows (the config and ``marker_parity_dataset`` check them)."""
    # a generator of its own, so the markers do not depend on how many sequences are drawn
    return np.sort(np.random.default_rng([seed, 0]).permutation(vocab_size)[:markers]
                   + FIRST_WORD)


def marker_parity_dataset(n_train: int, n_test: int, vocab_size: int = 1000,
                          seq_len: int = 500, markers: int = 2, seed: int = 0
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x, train_y, test_x, test_y) of generated token sequences, a function of the
    arguments: a corpus on which an LSTM memorises first and generalises late.

    A sequence has ``seq_len`` tokens (no padding): filler words drawn uniformly from the
    ``vocab_size - markers`` non-marker ids, and each of the ``markers`` marker words
    (``marker_words``) either absent or written once at a random position. The label is the
    parity (XOR) of which markers occur: 1 where an odd number of them do. The label is drawn
    first (balanced), then the presence of the first ``markers - 1`` markers uniformly, and the
    last marker's presence fixes the parity; so every presence pattern is equally likely and,
    with 2 or more markers, no single marker (nor any proper subset) says anything about the
    label.

    Why it is learned late: no single word correlates with the label, so the gradient has no
    first-order feature to follow toward the rule, while every training sequence of random
    filler is unique and easy to memorise from its filler words; weight decay then slowly pulls
    the network from the memorising weights to the sparse rule (as on sparse parity, Fig. 2e).
    The sizes at which an LSTM shows the delay were measured for the text study
    (``search_spaces/text.py``). Train and test are disjoint draws (generators of their own).
    """
    check_marker_sizes(markers, vocab_size, seq_len)
    words = marker_words(vocab_size, markers, seed)
    # one generator per split: the training sequences do not change with n_test
    train_x, train_y = _marker_sequences(np.random.default_rng([seed, 1]), n_train, vocab_size,
                                         seq_len, words)
    test_x, test_y = _marker_sequences(np.random.default_rng([seed, 2]), n_test, vocab_size,
                                       seq_len, words)
    return train_x, train_y, test_x, test_y


def _marker_sequences(rng: np.random.Generator, n: int, vocab_size: int, seq_len: int,
                      words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` marker-parity sequences [n, seq_len] and their labels [n] (balanced: drawn
    first)."""
    labels = rng.integers(0, 2, n)
    present = rng.integers(0, 2, (n, len(words)))
    present[:, -1] = (labels + present[:, :-1].sum(1)) % 2  # odd count where the label is 1
    filler = np.setdiff1d(np.arange(FIRST_WORD, id_count(vocab_size)), words)
    inputs = rng.choice(filler, size=(n, seq_len))
    # distinct random positions per sequence: the smallest random keys
    slots = np.argsort(rng.random((n, seq_len)), axis=1)[:, :len(words)]
    rows = np.broadcast_to(np.arange(n)[:, None], slots.shape)
    chosen = present.astype(bool)
    inputs[rows[chosen], slots[chosen]] = np.broadcast_to(words, slots.shape)[chosen]
    return inputs, labels.astype(np.int64)
