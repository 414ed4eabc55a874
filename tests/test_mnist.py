"""MNIST from IDX files (issue 10): the reader on tiny files the test writes (plain and gzip),
the split (train from the training files, test from the test files), and bad input."""
import gzip
import struct

import numpy as np
import pytest
import torch

import analysis
from grok_core.config import ConfigError, TaskConfig
from grok_core.idx import read_idx
from grok_core.tasks import build_dataset


def _write_idx(path, array, magic_type=0x08, compress=False):
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as handle:
        handle.write(data)


def fake_mnist(folder, n_train=40, n_test=12, side=6, compress=False, seed=0):
    """Four IDX files of random side x side images whose label is the brightest row."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        labels = images.sum(axis=2).argmax(axis=1).astype(np.uint8)
        suffix = ".gz" if compress else ""
        _write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, compress=compress)
        _write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_the_idx_reader_reads_what_was_written(tmp_path, compress):
    arrays = fake_mnist(tmp_path / "m", compress=compress)
    suffix = ".gz" if compress else ""
    images = read_idx(str(tmp_path / "m" / f"train-images-idx3-ubyte{suffix}"))
    assert images.shape == (40, 6, 6) and np.array_equal(images, arrays["train"][0])


def test_mnist_trains_on_the_training_files_and_tests_on_the_test_files(tmp_path):
    arrays = fake_mnist(tmp_path / "m")
    task = TaskConfig(name="mnist", data_dir=str(tmp_path / "m"), n_train=30)
    data = build_dataset(task)
    assert data.kind == "vectors" and data.vocab == 36 and data.classes == 10
    assert data.train.inputs.shape == (30, 36) and data.test.inputs.shape == (12, 36)
    test_images = torch.from_numpy(arrays["t10k"][0].reshape(12, 36) / 255.0).float()
    torch.testing.assert_close(data.test.inputs, test_images)  # not swapped with the train set
    assert torch.equal(build_dataset(task).train.inputs, data.train.inputs)
    assert not torch.equal(build_dataset(TaskConfig(
        name="mnist", data_dir=str(tmp_path / "m"), n_train=30, split_seed=1)).train.inputs,
        data.train.inputs)


def test_bad_mnist_folders_fail_at_construction_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="task.data_dir"):
        TaskConfig(name="mnist")
    with pytest.raises(ConfigError, match="no folder"):
        TaskConfig(name="mnist", data_dir=str(tmp_path / "nowhere"))
    fake_mnist(tmp_path / "m")
    _write_idx(tmp_path / "m" / "t10k-labels-idx1-ubyte", np.zeros(12), magic_type=0x0D)
    with pytest.raises(ConfigError, match="magic number"):
        TaskConfig(name="mnist", data_dir=str(tmp_path / "m"))
    fake_mnist(tmp_path / "m")
    with pytest.raises(ConfigError, match="task.n_train"):  # 1000 by default, 40 there
        TaskConfig(name="mnist", data_dir=str(tmp_path / "m"))


@pytest.mark.parametrize("problem, message", [("missing", "no folder"),
                                              ("magic", "magic number")])
def test_grok_refuses_a_bad_mnist_folder_with_exit_2(tmp_path, problem, message, grok):
    folder = tmp_path / "m"
    if problem == "magic":
        fake_mnist(folder)
        _write_idx(folder / "train-images-idx3-ubyte", np.zeros((4, 2, 2)), magic_type=0x09)
    result = grok("train", "dense", "--set", "task.name=mnist", "--set",
                  f"task.data_dir={folder}", "--out", tmp_path / "o")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_mnist_study_end_to_end_on_a_tiny_folder(tmp_path, grok):
    fake_mnist(tmp_path / "m", n_train=1200, n_test=50, compress=True)
    result = grok("sweep", "mnist", "--quick", "--seeds", "0", "--set",
                  f"task.data_dir={tmp_path / 'm'}", "--set", "train.steps=300",
                  "--set", "base.train.steps=300", "--storage", tmp_path / "s")
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = analysis.load(str(tmp_path / "s" / "mnist-quick"))
    assert len(loaded.members) == 1 and len(loaded.base) == 1
    missing = grok("sweep", "mnist", "--quick", "--storage", tmp_path / "s2")
    assert missing.returncode == 2 and "task.data_dir" in missing.stderr
