"""Artifact store: dense runs kept by content key, read and written through ``pyarrow.fs``.

Layout under a root (a local directory or a URI such as ``s3://bucket/prefix``): see
``grok_core.layout``: ``artifacts/<dense key>/seed_<s>/`` holds theta_t at each checkpoint
(``theta_<step>.pt``, 0 = theta_0), the curves and, written last, the summary.

Every file is written under a temporary name and then moved into place, so a reader never sees
half a file; a run without ``summary.json`` is incomplete and is never trusted. Runs are
deterministic for a seed and device, so two writers racing on one run write the same bytes.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any, Mapping

import pyarrow.fs as pafs

from .config import ConfigError
from .layout import (ARTIFACTS_DIR, CURVES_FILE, RUN_CONFIG_FILE, RUN_SUMMARY_FILE,
                     SEED_DIR_PREFIX)

if TYPE_CHECKING:  # imported lazily: checking a location must not wait for torch and pandas
    import pandas as pd
    import torch


def is_uri(location: str) -> bool:
    """Whether ``location`` is a URI (``s3://...``) rather than a local path."""
    return "://" in location


class Storage:
    """Atomic reads and writes of bytes, JSON, tensors and parquet under one root."""

    def __init__(self, location: str | os.PathLike) -> None:
        location = os.fspath(location)
        if is_uri(location):
            try:
                self.fs, self.root = pafs.FileSystem.from_uri(location)
            except Exception as exc:  # pyarrow raises several types for bad URIs
                raise ConfigError(f"cannot open storage {location!r}: {exc}") from None
        else:
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(location)
        self.location = location if is_uri(location) else self.root
        self.root = self.root.rstrip("/")

    def path(self, *parts: str) -> str:
        """Path of ``parts`` under the root (in the filesystem's own terms)."""
        return "/".join([self.root, *parts])

    def display(self, *parts: str) -> str:
        """Human-readable location of ``parts`` (a URI stays a URI)."""
        base = self.location.rstrip("/")
        return "/".join([base, *parts])

    def check_writable(self) -> None:
        """Raise ConfigError unless files can be written under the root; leaves nothing behind."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            probe = self.root
            while not os.path.exists(probe):
                parent = os.path.dirname(probe)
                if parent == probe:
                    break
                probe = parent
            if not os.path.isdir(probe):
                raise ConfigError(f"cannot write to {self.root!r}: {probe!r} is not a directory")
            try:  # a real attempt: permission bits say nothing for root or read-only mounts
                os.rmdir(tempfile.mkdtemp(prefix=".grok-write-probe-", dir=probe))
            except OSError as exc:
                raise ConfigError(f"cannot write to {self.root!r}: {exc.strerror} ({probe!r})"
                                  ) from None
            return
        marker = self.path(f".write-probe-{uuid.uuid4().hex}")
        try:
            self.fs.create_dir(self.root, recursive=True)
            with self.fs.open_output_stream(marker) as stream:
                stream.write(b"")
            self.fs.delete_file(marker)
        except Exception as exc:
            raise ConfigError(f"cannot write to {self.location!r}: {exc}") from None

    def exists(self, *parts: str) -> bool:
        """True if a file exists at ``parts``."""
        return self.fs.get_file_info(self.path(*parts)).type == pafs.FileType.File

    def is_dir(self, *parts: str) -> bool:
        """True if a folder exists at ``parts``."""
        return self.fs.get_file_info(self.path(*parts)).type == pafs.FileType.Directory

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Write atomically: a temporary sibling, then a move onto the final name."""
        final = self.path(*parts)
        self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
        temporary = f"{final}.tmp-{uuid.uuid4().hex}"
        try:
            with self.fs.open_output_stream(temporary) as stream:
                stream.write(data)
            self.fs.move(temporary, final)
        except BaseException:
            try:
                self.fs.delete_file(temporary)
            except Exception:
                pass
            raise

    def read_bytes(self, *parts: str) -> bytes:
        """Whole file contents."""
        with self.fs.open_input_stream(self.path(*parts)) as stream:
            return stream.read()

    def write_json(self, value: Any, *parts: str) -> None:
        """Atomic JSON file (sorted keys, so equal values give equal bytes)."""
        self.write_bytes(json.dumps(value, indent=1, sort_keys=True).encode(), *parts)

    def read_json(self, *parts: str) -> Any:
        """Parsed JSON file."""
        return json.loads(self.read_bytes(*parts))

    def write_tensors(self, tensors: Mapping[str, "torch.Tensor"], *parts: str) -> None:
        """Atomic ``torch.save`` of a dict of CPU tensors."""
        import torch  # only where tensors are written: checking a location never waits for it
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, buffer)
        self.write_bytes(buffer.getvalue(), *parts)

    def read_tensors(self, *parts: str) -> dict[str, "torch.Tensor"]:
        """A dict of tensors written by ``write_tensors``."""
        import torch  # only where tensors are read (see write_tensors)
        return torch.load(io.BytesIO(self.read_bytes(*parts)), weights_only=True)

    def write_parquet(self, frame: "pd.DataFrame", *parts: str) -> None:
        """Atomic parquet file."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        self.write_bytes(buffer.getvalue(), *parts)

    def read_parquet(self, *parts: str) -> "pd.DataFrame":
        """A parquet file as a DataFrame."""
        import pyarrow.parquet as pq  # with pandas: only where a table is read
        return pq.read_table(self.path(*parts), filesystem=self.fs).to_pandas()


def checkpoint_name(step: int) -> str:
    """File name of theta_t at ``step``."""
    return f"theta_{step:07d}.pt"


class ArtifactStore(Storage):
    """Dense runs by content key and seed (see module docstring)."""

    def key_parts(self, key: str) -> tuple[str, ...]:
        """Path parts of the dense runs (every seed) of one config."""
        return (ARTIFACTS_DIR, key)

    def run_parts(self, key: str, seed: int) -> tuple[str, ...]:
        """Path parts of one dense run."""
        return (ARTIFACTS_DIR, key, f"{SEED_DIR_PREFIX}{seed}")

    def has_dense(self, key: str, seed: int) -> bool:
        """True if the run finished and wrote its summary."""
        return self.exists(*self.run_parts(key, seed), RUN_SUMMARY_FILE)

    def has_curves(self, key: str, seed: int) -> bool:
        """True if the run's curves are there (a finished run, or one that died just after)."""
        return self.exists(*self.run_parts(key, seed), CURVES_FILE)

    def dense_summary(self, key: str, seed: int) -> dict[str, Any]:
        """Summary of a finished run (t_mem, t_gen, ..., steps_run, checkpoint_steps)."""
        return self.read_json(*self.run_parts(key, seed), RUN_SUMMARY_FILE)

    def dense_curves(self, key: str, seed: int) -> "pd.DataFrame":
        """Curve rows of a finished run."""
        return self.read_parquet(*self.run_parts(key, seed), CURVES_FILE)

    def run_config(self, key: str) -> dict[str, Any]:
        """The settings (``ExperimentConfig.to_dict``) of the dense runs under ``key``."""
        return self.read_json(*self.key_parts(key), RUN_CONFIG_FILE)

    def write_run_config(self, key: str, config: Mapping[str, Any]) -> None:
        """Keep the settings of the dense runs under ``key`` (for people and the analysis)."""
        self.write_json(dict(config), *self.key_parts(key), RUN_CONFIG_FILE)

    def write_dense_run(self, key: str, seed: int, curves: "pd.DataFrame",
                        summary: Mapping[str, Any]) -> None:
        """A finished run's curves, then its summary: written last, it marks the run complete
        (its checkpoints are already there)."""
        self.write_parquet(curves, *self.run_parts(key, seed), CURVES_FILE)
        self.write_json(dict(summary), *self.run_parts(key, seed), RUN_SUMMARY_FILE)

    def save_checkpoint(self, key: str, seed: int, step: int,
                        params: Mapping[str, "torch.Tensor"]) -> None:
        """Keep theta_t of one member."""
        self.write_tensors(params, *self.run_parts(key, seed), checkpoint_name(step))

    def load_checkpoint(self, key: str, seed: int, step: int) -> dict[str, "torch.Tensor"]:
        """theta_t of one member (step 0 is theta_0)."""
        return self.read_tensors(*self.run_parts(key, seed), checkpoint_name(step))
