"""Artifact store: dense runs kept by content key, read and written through ``pyarrow.fs``.

Layout under a root (a local directory or a URI such as ``s3://bucket/prefix``): see
``grok_core.layout``: ``artifacts/<dense key>/seed_<s>/`` holds theta_t at each checkpoint
(``theta_<step>.pt``, 0 = theta_0), the curves and, written last, the summary.

Every file is written under a temporary name and then moved into place, so a reader never sees
half a file; a run without ``summary.json`` is incomplete and is never trusted. Runs are
deterministic for a seed and device, so two writers racing on one run write the same bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any, Mapping

import pyarrow.fs as pafs

from .config import ConfigError
from .errors import CorruptArtifact
from .layout import (ARTIFACTS_DIR, CURVES_FILE, RUN_CONFIG_FILE, RUN_SUMMARY_FILE,
                     SEED_DIR_PREFIX)

if TYPE_CHECKING:  # imported lazily: checking a location must not wait for torch and pandas
    import pandas as pd
    import torch


def is_uri(location: str) -> bool:
    """Whether ``location`` is a URI (``s3://...``) rather than a local path."""
    return "://" in location


def _split_query(location: str) -> tuple[str, str]:
    """(the location without its query, ``?...`` or ''). A URI's query carries options such as
    ``endpoint_override`` for an S3-compatible server, and stays at the end of any child."""
    if not is_uri(location):
        return location, ""
    base, mark, query = location.partition("?")
    return base, mark + query


def join_location(location: str, *parts: str) -> str:
    """The child ``parts`` of a local path or URI (a URI's query kept at the end:
    ``s3://b/p?endpoint_override=h:9000`` + ``x`` -> ``s3://b/p/x?endpoint_override=h:9000``)."""
    base, query = _split_query(location)
    return "/".join([base.rstrip("/"), *parts]) + query


def location_name(location: str) -> str:
    """The last part of a local path or URI (its query left out)."""
    return _split_query(location)[0].rstrip("/").rpartition("/")[2]


def location_parent(location: str) -> str:
    """The folder holding a local path or URI (a URI's query kept)."""
    base, query = _split_query(location)
    head, slash, _ = base.rstrip("/").rpartition("/")
    return (head or ("/" if slash else ".")) + query


def without_query(location: str) -> str:
    """A location as people read it: a URI without its options."""
    return _split_query(location)[0]


def endpoint_in_uri(location: str) -> str:
    """``location`` with the S3 endpoint of ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (if
    set, and the URI names none) written into its query, so that the endpoint travels with the
    storage to every trial of a sweep, on every node, whatever that node's environment."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint or not location.startswith("s3://") or "endpoint_override=" in location:
        return location
    scheme, _, host = endpoint.rstrip("/").rpartition("://")
    options = f"endpoint_override={host}" + (f"&scheme={scheme}" if scheme else "")
    return location + ("&" if "?" in location else "?") + options


def open_location(location: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path in it) of a local path or URI; ConfigError for a URI pyarrow cannot
    open. S3 endpoints come from the URI (``?endpoint_override=HOST:PORT&scheme=http``) or
    from ``AWS_ENDPOINT_URL``; credentials from the usual AWS environment or config."""
    if not is_uri(location):
        return pafs.LocalFileSystem(), os.path.abspath(location)
    try:
        fs, path = pafs.FileSystem.from_uri(location)
    except Exception as exc:  # pyarrow raises several types for bad URIs
        raise ConfigError(f"cannot open storage {without_query(location)!r}: {exc}") from None
    return fs, path.rstrip("/")


class Storage:
    """Atomic reads and writes of bytes, JSON, tensors and parquet under one root."""

    def __init__(self, location: str | os.PathLike) -> None:
        location = os.fspath(location)
        self.fs, self.root = open_location(location)
        self.location = location if is_uri(location) else self.root

    def path(self, *parts: str) -> str:
        """Path of ``parts`` under the root (in the filesystem's own terms)."""
        return "/".join([self.root, *parts])

    def child(self, *parts: str) -> str:
        """The location of ``parts`` (a local path, or a URI with this one's options), to open
        as a ``Storage`` of its own."""
        return join_location(self.location, *parts)

    def display(self, *parts: str) -> str:
        """Human-readable location of ``parts`` (a URI stays a URI, without its options)."""
        return without_query(self.child(*parts))

    def folders(self) -> list[str]:
        """Names of the folders directly under the root (none if the root is missing)."""
        if not self.is_dir():
            return []
        entries = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=False))
        return sorted(e.base_name for e in entries if e.type == pafs.FileType.Directory)

    def move_folder(self, source: str, target: str) -> None:
        """Rename the folder ``source`` under the root to ``target``. Object stores have no
        folders to rename: there every file is copied, and the old ones deleted after."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.move(self.path(source), self.path(target))
            return
        pafs.copy_files(self.path(source), self.path(target), source_filesystem=self.fs,
                        destination_filesystem=self.fs)
        self.fs.delete_dir(self.path(source))

    def modified(self, *parts: str) -> float:
        """When the file at ``parts`` was last written (seconds since the epoch; 0 unknown)."""
        mtime = self.fs.get_file_info(self.path(*parts)).mtime
        return mtime.timestamp() if mtime is not None else 0.0

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

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Write atomically: a temporary sibling, then a move onto the final name. Returns the
        SHA-256 of ``data`` (hex), for a manifest that lets readers detect corruption."""
        final = self.path(*parts)
        self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
        temporary = f"{final}.tmp-{uuid.uuid4().hex}"
        try:
            with self.fs.open_output_stream(temporary) as stream:
                stream.write(data)
            self.fs.move(temporary, final)
            return sha256(data)
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

    def write_json(self, value: Any, *parts: str) -> str:
        """Atomic JSON file (sorted keys, so equal values give equal bytes); its SHA-256."""
        return self.write_bytes(json.dumps(value, indent=1, sort_keys=True).encode(), *parts)

    def read_json(self, *parts: str) -> Any:
        """Parsed JSON file."""
        return json.loads(self.read_bytes(*parts))

    def write_tensors(self, tensors: Mapping[str, "torch.Tensor"], *parts: str) -> str:
        """Atomic ``torch.save`` of a dict of CPU tensors; its SHA-256."""
        import torch  # only where tensors are written: checking a location never waits for it
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, buffer)
        return self.write_bytes(buffer.getvalue(), *parts)

    def read_tensors(self, *parts: str) -> dict[str, "torch.Tensor"]:
        """A dict of tensors written by ``write_tensors``."""
        return tensors_from(self.read_bytes(*parts))

    def write_parquet(self, frame: "pd.DataFrame", *parts: str) -> str:
        """Atomic parquet file; its SHA-256."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return self.write_bytes(buffer.getvalue(), *parts)

    def read_parquet(self, *parts: str) -> "pd.DataFrame":
        """A parquet file as a DataFrame."""
        import pyarrow.parquet as pq  # with pandas: only where a table is read
        return pq.read_table(self.path(*parts), filesystem=self.fs).to_pandas()


# In a dense run's summary: the SHA-256 of each of the run's files, and of the summary itself.
MANIFEST = "files"
SUMMARY_SEAL = "summary_sha256"


def tensors_from(data: bytes) -> dict[str, "torch.Tensor"]:
    """The dict of tensors in ``torch.save`` bytes (tensors only: no code runs)."""
    import torch  # only where tensors are read: checking a location never waits for it
    return torch.load(io.BytesIO(data), weights_only=True)


def frame_from(data: bytes) -> "pd.DataFrame":
    """The DataFrame in parquet bytes."""
    import pyarrow.parquet as pq  # with pandas: only where a table is read
    return pq.read_table(io.BytesIO(data)).to_pandas()


def sha256(data: bytes) -> str:
    """SHA-256 of ``data`` (hex), as the manifests keep it."""
    return hashlib.sha256(data).hexdigest()


def _sealed(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` with ``SUMMARY_SEAL``: the SHA-256 of its other fields (sorted JSON), so
    that a flipped byte which still parses is caught too."""
    body = {k: v for k, v in summary.items() if k != SUMMARY_SEAL}
    return {**body, SUMMARY_SEAL: sha256(json.dumps(body, sort_keys=True).encode())}


def checkpoint_name(step: int) -> str:
    """File name of theta_t at ``step``."""
    return f"theta_{step:07d}.pt"


class ArtifactStore(Storage):
    """Dense runs by content key and seed (see module docstring).

    Every file of a run is checked when read: the summary, written last, lists the SHA-256 of
    each checkpoint and of the curves (``MANIFEST``) and seals itself (``SUMMARY_SEAL``). A
    file that fails its checksum, or cannot be parsed, raises ``CorruptArtifact`` naming the
    file and the run, and is never used (``grok_core.recipes.repairing`` trains the run again).
    A run written before checksums (no manifest) is read as before, and only a file that
    cannot be parsed counts as corrupt there.
    """

    def __init__(self, location: str | os.PathLike) -> None:
        super().__init__(location)
        self._digests: dict[tuple[str, ...], str] = {}  # files this store wrote: their SHA-256
        self._summaries: dict[tuple[str, int], dict[str, Any]] = {}  # verified, read once

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
        """Summary of a finished run (t_mem, t_gen, ..., steps_run, checkpoint_steps);
        CorruptArtifact if it cannot be parsed or fails its seal."""
        if (key, seed) in self._summaries:
            return self._summaries[(key, seed)]
        try:
            summary = json.loads(self.read_bytes(*self.run_parts(key, seed), RUN_SUMMARY_FILE))
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._corrupt(RUN_SUMMARY_FILE, key, seed, f"unreadable ({exc})") from None
        if not isinstance(summary, dict) or (
                SUMMARY_SEAL in summary and _sealed(summary) != summary):
            raise self._corrupt(RUN_SUMMARY_FILE, key, seed, "fails its checksum")
        self._summaries[(key, seed)] = summary
        return summary

    def dense_curves(self, key: str, seed: int) -> "pd.DataFrame":
        """Curve rows of a finished run (checked against the run's manifest)."""
        data = self._verified(key, seed, CURVES_FILE)
        try:
            return frame_from(data)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise self._corrupt(CURVES_FILE, key, seed, f"unreadable ({exc})") from None

    def run_config(self, key: str) -> dict[str, Any]:
        """The settings (``ExperimentConfig.to_dict``) of the dense runs under ``key``."""
        return self.read_json(*self.key_parts(key), RUN_CONFIG_FILE)

    def write_run_config(self, key: str, config: Mapping[str, Any]) -> None:
        """Keep the settings of the dense runs under ``key`` (for people and the analysis)."""
        self.write_json(dict(config), *self.key_parts(key), RUN_CONFIG_FILE)

    def write_dense_run(self, key: str, seed: int, curves: "pd.DataFrame",
                        summary: Mapping[str, Any]) -> None:
        """A finished run's curves, then its summary: written last, it marks the run complete
        (its checkpoints are already there) and lists every file's SHA-256 (``MANIFEST``)."""
        parts = self.run_parts(key, seed)
        files = {CURVES_FILE: self.write_parquet(curves, *parts, CURVES_FILE)}
        for step in summary.get("checkpoint_steps", []):
            name = checkpoint_name(step)
            # written by this process: the digest of the bytes it wrote; else (a run resumed in
            # another process) of the bytes now stored, which were written whole (atomically)
            files[name] = self._digests.get((*parts, name)) or sha256(self.read_bytes(*parts,
                                                                                     name))
        self._summaries.pop((key, seed), None)
        self.write_json(_sealed({**summary, MANIFEST: files}), *parts, RUN_SUMMARY_FILE)

    def save_checkpoint(self, key: str, seed: int, step: int,
                        params: Mapping[str, "torch.Tensor"]) -> None:
        """Keep theta_t of one member."""
        parts = (*self.run_parts(key, seed), checkpoint_name(step))
        self._digests[parts] = self.write_tensors(params, *parts)

    def load_checkpoint(self, key: str, seed: int, step: int) -> dict[str, "torch.Tensor"]:
        """theta_t of one member (step 0 is theta_0), checked against the run's manifest."""
        name = checkpoint_name(step)
        data = self._verified(key, seed, name)
        try:
            return tensors_from(data)
        except Exception as exc:  # torch raises several types for a damaged file
            raise self._corrupt(name, key, seed, f"unreadable ({exc})") from None

    def discard_dense(self, key: str, seed: int) -> None:
        """Mark a run incomplete (its summary removed) so that it is trained again; its files
        are then replaced one by one, each atomically, and the new summary is written last."""
        self._summaries.pop((key, seed), None)
        try:
            self.fs.delete_file(self.path(*self.run_parts(key, seed), RUN_SUMMARY_FILE))
        except FileNotFoundError:
            pass

    def _verified(self, key: str, seed: int, name: str) -> bytes:
        """The bytes of a run's file; CorruptArtifact if they fail the manifest's checksum."""
        expected = self.dense_summary(key, seed).get(MANIFEST, {}).get(name)
        try:
            data = self.read_bytes(*self.run_parts(key, seed), name)
        except FileNotFoundError:
            raise self._corrupt(name, key, seed, "missing") from None
        if expected is not None and sha256(data) != expected:
            raise self._corrupt(name, key, seed, "fails its checksum")
        return data

    def _corrupt(self, name: str, key: str, seed: int, why: str) -> CorruptArtifact:
        return CorruptArtifact(self.display(*self.run_parts(key, seed), name), key, seed, why)
