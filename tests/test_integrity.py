"""Artifacts that detect corruption: every file of a dense run is listed with its SHA-256 in
the run's summary (which seals itself), checked when read, and a damaged run is trained again
in place, said in one line, never used and never a traceback."""
import json
import logging

import pytest

from analysis import results
from conftest import as_ticket
from grok_core.errors import CorruptArtifact
from grok_core.layout import CURVES_FILE, RUN_SUMMARY_FILE
from grok_core.recipes import run_experiment
from grok_core.store import MANIFEST, SUMMARY_SEAL, ArtifactStore, checkpoint_name


def _damage(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[:100]
    middle = len(data) // 2  # a flipped byte in the middle: the file may still parse
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


def _run_file(store: ArtifactStore, key: str, name: str) -> str:
    return store.path(*store.run_parts(key, 0), name)


@pytest.mark.parametrize("how", ["truncated", "flipped"])
@pytest.mark.parametrize("name", [checkpoint_name(0), CURVES_FILE])
def test_a_damaged_file_is_detected_and_its_dense_run_trained_again(
        tmp_path, grokking_config, caplog, how, name):
    store = ArtifactStore(tmp_path)
    ticket = as_ticket(grokking_config)
    first = run_experiment(ticket, [0], store, rates=[0.6])
    key = ticket.dense_base().dense_key()
    path = _run_file(store, key, name)
    with open(path, "rb") as handle:
        original = handle.read()
    with open(path, "wb") as handle:
        handle.write(_damage(original, how))

    with caplog.at_level(logging.WARNING, logger="grok.recipes"):
        again = run_experiment(ticket, [0], ArtifactStore(tmp_path), rates=[0.6])
    (line,) = [r.getMessage() for r in caplog.records if "corrupt artifact" in r.getMessage()]
    assert f"corrupt artifact {path} of dense run {key} seed 0" in line
    assert "training the dense run again in place" in line
    with open(path, "rb") as handle:
        assert handle.read() == original  # trained again: the same bytes, in place
    assert again.base_members["trained"].all()  # the damaged run was not used
    assert again.members.drop(columns="trained", errors="ignore").equals(
        first.members.drop(columns="trained", errors="ignore"))


def _dense_run_summary(tmp_path, config) -> tuple[ArtifactStore, str, str, dict]:
    """(store, key, summary file, summary) of seed 0's dense run of ``config``, trained."""
    store = ArtifactStore(tmp_path)
    run_experiment(config, [0], store)
    key = config.dense_key()
    path = _run_file(store, key, RUN_SUMMARY_FILE)
    return store, key, path, json.load(open(path))


def test_a_changed_summary_fails_its_seal(tmp_path, grokking_config):
    _, key, path, summary = _dense_run_summary(tmp_path, grokking_config)
    json.dump({**summary, "t_gen": 1}, open(path, "w"))  # still valid JSON, another number
    with pytest.raises(CorruptArtifact, match=f"{RUN_SUMMARY_FILE} of dense run {key} seed 0: "
                                              "fails its checksum"):
        ArtifactStore(tmp_path).dense_summary(key, 0)


def test_a_run_written_before_checksums_is_still_read(tmp_path, grokking_config):
    store, key, path, summary = _dense_run_summary(tmp_path, grokking_config)
    old = {k: v for k, v in summary.items() if k not in (MANIFEST, SUMMARY_SEAL)}
    json.dump(old, open(path, "w"))
    reader = ArtifactStore(tmp_path)
    assert reader.dense_summary(key, 0) == old
    assert set(reader.load_checkpoint(key, 0, 0)) == set(store.load_checkpoint(key, 0, 0))
    with open(_run_file(store, key, CURVES_FILE), "wb") as handle:
        handle.write(b"not parquet")  # without a manifest only what cannot be parsed is caught
    with pytest.raises(CorruptArtifact, match="unreadable"):
        reader.dense_curves(key, 0)


def test_a_damaged_checkpoint_in_a_bucket_is_repaired(s3_server, grokking_config):
    from servers import s3_uri

    store = ArtifactStore(s3_uri(s3_server.endpoint, "integrity"))
    ticket = as_ticket(grokking_config)
    run_experiment(ticket, [0], store, rates=[0.6])
    key = ticket.dense_base().dense_key()
    path = _run_file(store, key, checkpoint_name(0))
    with store.fs.open_input_stream(path) as stream:
        original = stream.read()
    with store.fs.open_output_stream(path) as stream:
        stream.write(_damage(original, "flipped"))
    again = run_experiment(ticket, [0], ArtifactStore(store.location), rates=[0.6])
    assert again.base_members["trained"].all()
    with store.fs.open_input_stream(path) as stream:
        assert stream.read() == original


def test_the_analysis_leaves_out_a_damaged_dense_curve_with_one_line(tmp_path, grok):
    from conftest import TINY_TICKET

    sweep = grok("sweep", "headline", "--quick", *TINY_TICKET, "--set", "train.steps=200",
                 "--set", "base.train.steps=600", "--seeds", "0", "--rates", "0.6",
                 "--storage", tmp_path, "--name", "h")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    (curves,) = (tmp_path / "artifacts").glob(f"*/seed_0/{CURVES_FILE}")
    curves.write_bytes(curves.read_bytes()[:100])
    shown = grok("results", tmp_path / "h")
    assert shown.returncode == 0 and "Traceback" not in shown.stderr
    assert f"corrupt artifact {curves}" in shown.stderr
    assert results.load(str(tmp_path / "h")).base_curves.empty
