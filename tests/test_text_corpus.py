"""The marker-parity text corpus (App. J on data with a grokking delay): determinism, the rule
recomputed here from the raw tokens, disjoint splits, balanced labels, one-line errors, and the
text study's settings."""
import itertools

import numpy as np
import pytest

import search_spaces
from grok_core.config import ConfigError, ExperimentConfig
from grok_core.tasks import text_dataset
from grok_core.text import FIRST_WORD, PAD, id_count, marker_parity_dataset, marker_words


def test_shapes_dtypes_and_ids():
    train_x, train_y, test_x, test_y = marker_parity_dataset(40, 10, vocab_size=20, seq_len=12,
                                                             markers=3)
    assert train_x.shape == (40, 12) and test_x.shape == (10, 12)
    assert train_y.shape == (40,) and test_y.shape == (10,)
    assert all(a.dtype == np.int64 for a in (train_x, train_y, test_x, test_y))
    both = np.concatenate([train_x, test_x])
    assert both.min() >= FIRST_WORD and both.max() <= id_count(20) - 1  # no padding, no unknown
    assert not (both == PAD).any()
    assert set(np.unique(train_y)) <= {0, 1}


def test_same_seed_same_data_other_seed_other_data():
    first = marker_parity_dataset(30, 10, 20, 12, markers=2, seed=5)
    again = marker_parity_dataset(30, 10, 20, 12, markers=2, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    other = marker_parity_dataset(30, 10, 20, 12, markers=2, seed=6)
    assert not np.array_equal(first[0], other[0])
    assert np.array_equal(marker_words(100, 3, seed=4), marker_words(100, 3, seed=4))
    assert not all(np.array_equal(marker_words(100, 3, seed=s), marker_words(100, 3, seed=0))
                   for s in range(1, 6))


@pytest.mark.parametrize("markers", [1, 2, 3])
def test_labels_are_the_parity_of_which_markers_occur(markers):
    vocab, seed = 50, 3
    train_x, train_y, test_x, test_y = marker_parity_dataset(400, 200, vocab, 15, markers, seed)
    words = marker_words(vocab, markers, seed)
    assert len(set(words.tolist())) == markers
    assert ((words >= FIRST_WORD) & (words < id_count(vocab))).all()
    for x, y in ((train_x, train_y), (test_x, test_y)):
        # recomputed here from the raw token rows, word by word
        expected = [sum(int(w in row.tolist()) for w in words.tolist()) % 2 for row in x]
        assert y.tolist() == expected
        # a marker is written at most once; the rest of a row is filler
        for row in x:
            assert all(row.tolist().count(w) <= 1 for w in words.tolist())


def test_no_single_marker_says_anything_about_the_label():
    train_x, train_y, _, _ = marker_parity_dataset(4000, 1, 100, 20, markers=2, seed=1)
    words = marker_words(100, 2, seed=1)
    present = np.stack([(train_x == w).any(1) for w in words], axis=1)
    # every presence pattern occurs, about equally often
    patterns = {pattern: (present == pattern).all(1).mean()
                for pattern in itertools.product([False, True], repeat=2)}
    assert all(0.2 < share < 0.3 for share in patterns.values()), patterns
    for column in range(2):  # label rate with and without each marker: both about 1/2
        for value in (False, True):
            assert 0.45 < train_y[present[:, column] == value].mean() < 0.55


def test_labels_are_balanced():
    for seed in range(3):
        _, train_y, _, test_y = marker_parity_dataset(2000, 500, 100, 20, 2, seed)
        assert 0.45 < train_y.mean() < 0.55 and 0.4 < test_y.mean() < 0.6


def test_train_and_test_are_disjoint_draws():
    train_x, _, test_x, _ = marker_parity_dataset(500, 200, vocab_size=100, seq_len=20)
    assert not {tuple(row) for row in train_x} & {tuple(row) for row in test_x}
    assert len({tuple(row) for row in train_x}) == 500  # every training sequence unique
    bigger = marker_parity_dataset(500, 300, vocab_size=100, seq_len=20)
    assert np.array_equal(bigger[0], train_x)  # more test sequences leave the training ones


@pytest.mark.parametrize("kwargs, message", [
    ({"seq_len": 2, "markers": 3}, "task.seq_len: .* at least 3 tokens, got 2"),
    ({"vocab_size": 3, "markers": 3}, "task.vocab_size: .* more words than its 3 markers"),
    ({"markers": 0}, "task.markers: .* at least 1 marker word, got 0"),
])
def test_bad_sizes_are_one_line_config_errors(kwargs, message):
    arguments = {"n_train": 10, "n_test": 5, "vocab_size": 20, "seq_len": 10, **kwargs}
    with pytest.raises(ConfigError, match=message) as error:
        marker_parity_dataset(**arguments)
    assert "\n" not in str(error.value)
    # the same sizes are refused when the config is built, before any work
    settings = {f"task.{key}": value for key, value in arguments.items()
                if key not in ("n_train", "n_test")}
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig.from_dict({"task.name": "text", "task.corpus": "marker_parity",
                                    **settings})


def test_the_text_task_builds_the_corpus_from_its_settings():
    config = ExperimentConfig.from_dict({
        "task": {"name": "text", "corpus": "marker_parity", "n_train": 30, "n_test": 20,
                 "vocab_size": 40, "seq_len": 10, "markers": 3, "split_seed": 2},
        "model": {"name": "lstm"}})
    data = text_dataset(config.task)
    train_x, train_y, test_x, test_y = marker_parity_dataset(30, 20, 40, 10, 3, seed=2)
    assert np.array_equal(data.train.inputs.numpy(), train_x)
    assert np.array_equal(data.test.labels.numpy(), test_y)
    assert data.vocab == id_count(40) and data.classes == 2
    with pytest.raises(ConfigError, match="task.markers: applies to task.name=text"):
        ExperimentConfig.from_dict({"task": {"name": "parity", "markers": 3}})


def test_the_text_study_uses_the_marker_parity_corpus_at_the_measured_settings():
    study = search_spaces.get_study("text")
    for quick in (False, True):
        space = study.param_space(quick=quick)
        assert space["recipe"] == "ticket" and space["rates"] == [0.6]
        assert space["task"] == {"name": "text", "corpus": "marker_parity", "n_train": 2000,
                                 "n_test": 500, "seq_len": 20, "vocab_size": 100, "markers": 2}
        assert space["model"] == {"name": "lstm", "d_emb": 32, "d_hidden": 64}
        assert space["optim"] == {"lr": 1e-3, "weight_decay": 0.3 if quick else 0.1}
        assert space["train"]["batch_size"] == 32 and space["train"]["eval_every"] == 100
        config = ExperimentConfig.from_dict({k: v for k, v in space.items()
                                             if k not in ("seeds", "rates")})
        assert config.task.corpus == "marker_parity" and config.task.markers == 2
        assert config.dense_base().train.batch_size == 32  # the dense run's minibatches too
    full, quick = study.param_space(), study.param_space(quick=True)
    assert full["seeds"] == [0, 1, 2] and full["base"]["train"]["steps"] == 25_000
    assert full["train"]["steps"] == 20_000 and full["train"]["stop_margin"] == 2_000
    assert quick["seeds"] == [0, 1] and quick["base"]["train"]["steps"] == 8_000
    assert quick["train"]["steps"] == 3_000 and quick["train"]["stop_margin"] == 300

def test_the_documented_imdb_overrides_give_app_j_settings(tmp_path):
    from search_spaces.text import APP_J_IMDB
    folder = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            (folder / split / label).mkdir(parents=True)
            (folder / split / label / "0_1.txt").write_text("a fine film", encoding="utf-8")
    space = search_spaces.get_study("text").param_space()
    settings = {k: v for k, v in space.items() if k not in ("seeds", "rates")}
    config = ExperimentConfig.from_dict({**ExperimentConfig.from_dict(settings).to_flat(),
                                         **APP_J_IMDB, "task.data_dir": str(folder)})
    assert config.task.corpus == "aclimdb" and config.task.n_train is None
    assert (config.task.seq_len, config.task.vocab_size) == (500, 1000)
    assert (config.model.d_emb, config.model.d_hidden) == (64, 128)
    assert (config.optim.lr, config.optim.weight_decay) == (1e-3, 1e-3)
    assert config.train.batch_size == 32
    assert len(text_dataset(config.task).test.labels) == 1  # 25 % of 4 reviews
