"""The IDX file format of MNIST (LeCun et al.), read with numpy; gzip-compressed files too.

An IDX file starts with a magic number: two zero bytes, a type code (0x08: unsigned bytes) and
the number of dimensions; then one big-endian 32-bit size per dimension; then the data. Bad
input (a missing file, another magic number, sizes that do not fit) raises ``ConfigError`` with
one line naming the file.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from .errors import ConfigError

UNSIGNED_BYTE = 0x08
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
MNIST_DIMS = {"train_images": 3, "train_labels": 1, "test_images": 3, "test_labels": 1}


def _open(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def find_file(folder: str, name: str) -> str:
    """The path of IDX file ``name`` in ``folder`` (plain or .gz); ConfigError if neither."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    raise ConfigError(f"task.data_dir: no {name} (or {name}.gz) in {folder}")


def read_header(path: str) -> tuple[int, ...]:
    """The sizes of an IDX file of unsigned bytes; ConfigError if it is not one."""
    try:
        with _open(path) as handle:
            magic = handle.read(4)
            if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] != UNSIGNED_BYTE:
                raise ConfigError(f"{path}: not an IDX file of unsigned bytes (magic number "
                                  f"{magic.hex() or 'missing'}, expected 000008xx)")
            raw = handle.read(4 * magic[3])
    except (OSError, EOFError) as error:
        raise ConfigError(f"{path}: cannot read it ({error})") from None
    if len(raw) < 4 * magic[3]:
        raise ConfigError(f"{path}: cut short in its header")
    return struct.unpack(f">{magic[3]}I", raw)


def read_idx(path: str) -> np.ndarray:
    """The array an IDX file of unsigned bytes holds."""
    shape = read_header(path)
    with _open(path) as handle:
        handle.read(4 + 4 * len(shape))
        data = np.frombuffer(handle.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ConfigError(f"{path}: holds {data.size} values, its header says {shape}")
    return data.reshape(shape)


def check_mnist_folder(folder: str) -> dict[str, tuple[int, ...]]:
    """The sizes of the four MNIST IDX files in ``folder``; ConfigError (one line) unless they
    are there with fitting headers (images [n, rows, cols], labels [n], as many labels as
    images)."""
    if not os.path.isdir(folder):
        raise ConfigError(f"task.data_dir: no folder {folder}")
    shapes = {}
    for key, name in MNIST_FILES.items():
        shapes[key] = read_header(find_file(folder, name))
        if len(shapes[key]) != MNIST_DIMS[key]:
            raise ConfigError(f"{find_file(folder, name)}: {len(shapes[key])} dimensions, "
                              f"expected {MNIST_DIMS[key]}")
    for split in ("train", "test"):
        if shapes[f"{split}_images"][0] != shapes[f"{split}_labels"][0]:
            raise ConfigError(f"task.data_dir: {split} images and labels differ in number "
                              f"({shapes[f'{split}_images'][0]} vs {shapes[f'{split}_labels'][0]})")
    return shapes


def read_mnist(folder: str) -> dict[str, np.ndarray]:
    """The four MNIST arrays of ``folder`` (images uint8 [n, rows, cols], labels uint8 [n])."""
    check_mnist_folder(folder)
    return {key: read_idx(find_file(folder, name)) for key, name in MNIST_FILES.items()}
