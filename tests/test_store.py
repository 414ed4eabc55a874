"""Artifact store: atomic files, trusted only when complete, URIs, reuse by the ticket recipe."""
import os

import pytest
import torch

from grok_core.config import ConfigError
from grok_core.recipes import ensure_dense, run_experiment
from grok_core.store import ArtifactStore, Storage

from conftest import as_ticket


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    storage = Storage(tmp_path)
    storage.write_json({"b": 1, "a": [1, 2]}, "x", "y.json")
    storage.write_tensors({"w": torch.arange(3.0)}, "x", "w.pt")
    assert storage.read_json("x", "y.json") == {"a": [1, 2], "b": 1}
    assert torch.equal(storage.read_tensors("x", "w.pt")["w"], torch.arange(3.0))
    assert sorted(os.listdir(tmp_path / "x")) == ["w.pt", "y.json"]


def test_a_failed_write_leaves_nothing(tmp_path):
    storage = Storage(tmp_path)
    with pytest.raises(TypeError):
        storage.write_bytes(object(), "half.bin")  # type: ignore[arg-type]
    assert not storage.exists("half.bin")
    assert [p for p in os.listdir(tmp_path) if "tmp" in p] == []


def test_file_uri_works_like_a_directory(tmp_path, small_config):
    uri = ArtifactStore(f"file://{tmp_path}/store")
    ensure_dense(small_config, [0], uri)
    local = ArtifactStore(tmp_path / "store")
    assert local.has_dense(small_config.dense_key(), 0)
    assert local.dense_summary(small_config.dense_key(), 0)["steps_run"] == 200


def test_unwritable_locations_are_refused_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        Storage(blocker / "sub").check_writable()
    with pytest.raises(ConfigError):
        Storage("/proc/grok-test").check_writable()
    Storage(tmp_path / "new" / "dir").check_writable()
    assert not (tmp_path / "new").exists()  # the probe created nothing lasting


def test_dense_runs_are_reused_and_incomplete_ones_redone(tmp_path, small_config, caplog):
    caplog.set_level("INFO", logger="grok")
    store = ArtifactStore(tmp_path)
    first, _ = ensure_dense(small_config, [0, 1], store)
    assert first["trained"].tolist() == [True, True]
    key = small_config.dense_key()
    run_dir = tmp_path / "artifacts" / key / "seed_1"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "curves.parquet", "summary.json", "theta_0000000.pt", "theta_0000050.pt",
        "theta_0000100.pt", "theta_0000150.pt", "theta_0000200.pt"]
    # an interrupted run: checkpoints but no summary -> not trusted, trained again
    (run_dir / "summary.json").unlink()
    caplog.clear()
    again, _ = ensure_dense(small_config, [0, 1], store)
    notes = caplog.messages
    assert again["trained"].tolist() == [False, True]
    assert any("seed 0: reused" in n for n in notes) and any("seeds 1: training" in n for n in notes)
    assert again.drop(columns="trained").equals(first.drop(columns="trained"))


def test_ticket_uses_theta_0_of_its_dense_run_and_the_mask_of_theta_t(tmp_path, small_config):
    store = ArtifactStore(tmp_path)
    ticket = as_ticket(small_config, "prune.step=100")
    result = run_experiment(ticket, [0], store, rates=[0.5, 0.8])
    assert result.members["pruning_rate"].tolist() == [0.5, 0.8]
    assert result.members["prune_step"].tolist() == [100, 100]
    assert result.base_members["trained"].tolist() == [True]
    key = small_config.dense_key()
    theta_0 = store.load_checkpoint(key, 0, 0)
    theta_t = store.load_checkpoint(key, 0, 100)
    from grok_core.pruning import magnitude_mask
    from grok_core.recipes import ticket_members
    members = ticket_members(ticket, [0], [0.8], store)
    expected = magnitude_mask(theta_t, 0.8)
    for name in theta_0:
        assert torch.equal(members[0].init[name], theta_0[name])
        assert torch.equal(members[0].mask[name], expected[name])
    total = sum(m.numel() for m in expected.values())
    assert sum(int((~m).sum()) for m in expected.values()) == int(0.8 * total)


def test_ticket_step_beyond_an_early_stopped_dense_run_is_refused(tmp_path, grokking_config):
    store = ArtifactStore(tmp_path)
    ticket = as_ticket(grokking_config.with_overrides(["train.steps=3000", "train.stop_margin=50"]),
                       "prune.step=2750")
    with pytest.raises(ConfigError, match="beyond or between"):
        run_experiment(ticket, [0], store)


def test_every_ticket_row_says_whether_its_dense_run_had_generalised_by_the_mask_step(
        tmp_path, grokking_config, caplog):
    store = ArtifactStore(tmp_path)
    caplog.set_level("INFO", logger="grok")
    early = run_experiment(as_ticket(grokking_config, "prune.step=250"), [0], store)
    notes = caplog.messages
    t_gen = early.base_members["t_gen"].iloc[0]
    assert t_gen > 250  # the dense run generalises later (step ~700)
    assert early.members["base_generalised"].tolist() == [False]
    assert early.members["base_t_gen"].tolist() == [t_gen]
    assert any("non-grokking ticket" in n and "seed 0" in n for n in notes)
    caplog.clear()
    final = run_experiment(as_ticket(grokking_config), [0], store)
    assert final.members["base_generalised"].tolist() == [True]
    assert not any("non-grokking" in n for n in caplog.messages)
