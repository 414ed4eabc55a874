"""Sentiment text data (App. J): the aclImdb reader on a tiny folder written here, the folder
check's one-line errors, and the seeded synthetic corpus."""
import numpy as np
import pytest

from grok_core.config import ConfigError
from grok_core.text import (aclimdb_dataset, build_vocabulary, check_aclimdb_folder, encode,
                            id_count, read_aclimdb, synthetic_dataset, synthetic_labels,
                            synthetic_sentiment_words, tokenize)

REVIEWS = {
    ("train", "pos"): {"1_9.txt": "Great great film.<br /><br />Loved it, loved the cast",
                       "0_8.txt": "great fun"},
    ("train", "neg"): {"0_2.txt": "Bad, BAD film!"},
    ("test", "pos"): {"5_10.txt": "Great acting"},
    ("test", "neg"): {"3_1.txt": "awful<br />boring", "2_3.txt": "Dull and bad"},
}


def write_aclimdb(root, reviews=REVIEWS):
    """An aclImdb-layout folder under ``root`` holding ``reviews``."""
    folder = root / "aclImdb"
    for (split, label), files in reviews.items():
        (folder / split / label).mkdir(parents=True)
        for name, text in files.items():
            (folder / split / label / name).write_text(text, encoding="utf-8")
    return folder


def test_tokenize_lowercases_splits_words_and_drops_line_breaks():
    assert tokenize("It's <br />a 'great' film!<br /><br />10/10") == [
        "it's", "a", "great", "film", "10", "10"]
    assert tokenize("''") == []


def test_vocabulary_ranks_by_count_then_alphabet_and_encoding_pads_at_the_front():
    vocabulary = build_vocabulary([["b", "d", "c", "c"], ["b", "a", "c"]], size=3)
    assert vocabulary == {"c": 2, "b": 3, "a": 4}
    assert id_count(3) == 5
    encoded = encode([["a", "d", "c"], ["a", "b", "c", "b", "a", "c"], []], vocabulary, 4)
    assert encoded.dtype == np.int64
    assert encoded.tolist() == [[0, 4, 1, 2], [2, 3, 4, 2], [0, 0, 0, 0]]  # the last 4 kept


def test_read_aclimdb_order_labels_and_text(tmp_path):
    texts, labels = read_aclimdb(str(write_aclimdb(tmp_path)))
    assert texts == ["great fun", "Great great film.<br /><br />Loved it, loved the cast",
                     "Bad, BAD film!", "Great acting", "Dull and bad", "awful<br />boring"]
    assert labels.dtype == np.int64 and labels.tolist() == [1, 1, 0, 1, 0, 0]


def test_aclimdb_dataset_splits_and_builds_the_vocabulary_from_training_reviews(tmp_path):
    folder = str(write_aclimdb(tmp_path))
    train_x, train_y, test_x, test_y = aclimdb_dataset(folder, vocab_size=50, seq_len=5,
                                                       test_fraction=0.5, split_seed=3)
    assert train_x.shape == (3, 5) and test_x.shape == (3, 5)
    assert all(a.dtype == np.int64 for a in (train_x, train_y, test_x, test_y))
    texts, labels = read_aclimdb(folder)
    order = np.random.default_rng(3).permutation(6)
    train, test = order[:3], order[3:]
    assert train_y.tolist() == labels[train].tolist() and test_y.tolist() == labels[test].tolist()
    vocabulary = build_vocabulary([tokenize(texts[i]) for i in train], 50)
    train_words = {w for i in train for w in tokenize(texts[i])}
    assert set(vocabulary) == train_words  # no test-only word
    assert train_x.tolist() == encode([tokenize(texts[i]) for i in train], vocabulary, 5).tolist()
    assert test_x.tolist() == encode([tokenize(texts[i]) for i in test], vocabulary, 5).tolist()
    only_test = {w for i in test for w in tokenize(texts[i])} - train_words
    assert only_test and (test_x == 1).any()  # test-only words are unknown
    # the 8-word review keeps its last 5 words; "great fun" is padded at the front
    rows = {int(i): row for i, row in zip(order, np.concatenate([train_x, test_x]))}
    ids = lambda words: [vocabulary.get(w, 1) for w in words]  # noqa: E731
    assert rows[1].tolist() == ids(["loved", "it", "loved", "the", "cast"])
    assert rows[0].tolist() == [0, 0, 0] + ids(["great", "fun"])


def test_aclimdb_test_split_is_round_fraction_at_least_one(tmp_path):
    folder = str(write_aclimdb(tmp_path))
    assert len(aclimdb_dataset(folder, test_fraction=0.25)[2]) == 2  # round(1.5)
    assert len(aclimdb_dataset(folder, test_fraction=0.01)[2]) == 1


@pytest.mark.parametrize("damage, message", [
    ("no_folder", "no folder"),
    ("no_test_neg", "has no test/neg folder"),
    ("empty_train_pos", "train/pos holds no .txt review"),
])
def test_check_aclimdb_folder_fails_with_one_line(tmp_path, damage, message):
    folder = write_aclimdb(tmp_path)
    check_aclimdb_folder(str(folder))
    if damage == "no_folder":
        folder = tmp_path / "missing"
    elif damage == "no_test_neg":
        for path in (folder / "test" / "neg").iterdir():
            path.unlink()
        (folder / "test" / "neg").rmdir()
    else:
        for path in (folder / "train" / "pos").iterdir():
            path.unlink()
        (folder / "train" / "pos" / "notes.md").write_text("not a review")
    with pytest.raises(ConfigError, match=message) as error:
        check_aclimdb_folder(str(folder))
    assert str(folder) in str(error.value) and "\n" not in str(error.value)


def test_synthetic_shapes_dtypes_and_ids():
    train_x, train_y, test_x, test_y = synthetic_dataset(40, 10, vocab_size=20, seq_len=12)
    assert train_x.shape == (40, 12) and test_x.shape == (10, 12)
    assert train_y.shape == (40,) and test_y.shape == (10,)
    assert all(a.dtype == np.int64 for a in (train_x, train_y, test_x, test_y))
    both = np.concatenate([train_x, test_x])
    assert both.min() == 0 and both.max() <= id_count(20) - 1
    assert not (both == 1).any()  # no unknown words: every id is a word
    real = both != 0
    assert (np.diff(real.astype(int), axis=1) >= 0).all()  # padding only at the front
    assert real[:, -1].all() and real.sum(1).min() >= 3 and (~real).any()


def test_synthetic_is_deterministic_from_its_seed():
    first, again = synthetic_dataset(30, 10, 20, 12, seed=5), synthetic_dataset(30, 10, 20, 12,
                                                                                 seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other = synthetic_dataset(30, 10, 20, 12, seed=6)
    assert not np.array_equal(first[0], other[0])


def test_synthetic_labels_are_a_function_of_the_tokens_that_needs_several_words():
    train_x, train_y, test_x, test_y = synthetic_dataset(200, 100, vocab_size=100, seq_len=40,
                                                         seed=2)
    positive, negative = synthetic_sentiment_words(100, seed=2)
    assert not set(positive) & set(negative)
    for x, y in ((train_x, train_y), (test_x, test_y)):
        assert np.array_equal(synthetic_labels(x, 100, seed=2), y)
        balance = np.isin(x, positive).sum(1) - np.isin(x, negative).sum(1)
        assert (balance != 0).all() and (np.abs(balance) % 2 == 1).all()  # odd: no ties
        assert (np.isin(x, np.concatenate([positive, negative])).sum(1) >= 3).all()
        assert 0.3 < y.mean() < 0.7
    # one word does not decide: a negative review can hold a positive word and vice versa
    has_positive = np.isin(train_x, positive).any(1)
    assert (has_positive & (train_y == 0)).any()


def test_synthetic_train_and_test_are_disjoint_draws():
    train_x, _, test_x, _ = synthetic_dataset(100, 50, vocab_size=100, seq_len=40)
    assert not {tuple(row) for row in train_x} & {tuple(row) for row in test_x}
    bigger = synthetic_dataset(100, 80, vocab_size=100, seq_len=40)
    assert np.array_equal(bigger[0], train_x)  # more test reviews leave the training ones
