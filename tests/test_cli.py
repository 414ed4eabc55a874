"""`grok train` end to end through the real entry point (``sweeps.cli.main``, in this process),
and its bad-input handling, in this process and once through the console script."""
import json

import pandas as pd
import pytest

from conftest import GROKKING_OVERRIDES, error_line, run_grok

SMALL = [arg for key in GROKKING_OVERRIDES + ["train.steps=500"] for arg in ("--set", key)]
# a ticket's own train.* never reaches its dense run: the small dense runs are asked for here
SMALL_BASE = [arg for key in ["base.train.steps=500", "base.train.checkpoint_every=250"]
              for arg in ("--set", key)]


def test_dense_then_ticket_reusing_it(tmp_path, grok):
    store, out_dense, out_ticket = tmp_path / "store", tmp_path / "dense", tmp_path / "ticket"
    dense = grok("train", "dense", "--seeds", "0,1", *SMALL, "--storage", str(store),
                 "--out", str(out_dense), "--json")
    assert dense.returncode == 0, dense.stderr
    rows = json.loads(dense.stdout)  # stdout is nothing but the JSON list
    assert [r["seed"] for r in rows] == [0, 1]
    assert set(rows[0]) == {"seed", "pruning_rate", "t_mem", "t_gen", "tau_grok",
                            "final_train_acc", "final_test_acc", "steps_run"}
    assert all(r["pruning_rate"] == 0.0 and r["t_mem"] > 0 for r in rows)
    assert "training" in dense.stderr

    ticket = grok("train", "ticket", "--seeds", "0,1", "--rates", "0.3,0.5", *SMALL,
                  *SMALL_BASE, "--set", "prune.step=250", "--storage", str(store),
                  "--out", str(out_ticket))
    assert ticket.returncode == 0, ticket.stderr
    assert "seed 0: reused" in ticket.stderr and "seed 1: reused" in ticket.stderr
    assert "training" not in ticket.stderr.split("ticket:")[0]
    assert "tau_grok" in ticket.stdout and "dense runs behind the tickets" in ticket.stdout
    assert "base_generalised" in ticket.stdout

    members = pd.read_parquet(out_ticket / "members.parquet")
    assert members[["seed", "pruning_rate"]].values.tolist() == [[0, 0.3], [0, 0.5], [1, 0.3], [1, 0.5]]
    curves = pd.read_parquet(out_ticket / "curves.parquet")
    assert {"seed", "pruning_rate", "step", "train_loss", "train_acc", "test_loss", "test_acc",
            "l1_norm", "l2_norm"} <= set(curves.columns)
    assert len(curves) == 4 * (500 // 10 + 1)
    assert (out_ticket / "curves.png").read_bytes()[:4] == b"\x89PNG"
    base_curves = pd.read_parquet(out_ticket / "base_curves.parquet")
    assert sorted(base_curves["seed"].unique()) == [0, 1]
    config = json.loads((out_ticket / "config.json").read_text())
    assert config["config"]["prune"]["step"] == 250 and config["rates"] == [0.3, 0.5]


def test_base_settings_override_only_the_dense_run(tmp_path, grok):
    store = tmp_path / "store"
    result = grok("train", "ticket", *SMALL, "--set", "train.steps=100", "--set",
                  "base.optim.weight_decay=0.5", "--set", "optim.weight_decay=0",
                  "--set", "base.train.steps=250", "--store", str(store), "--out",
                  str(tmp_path / "o"), "--no-progress")
    assert result.returncode == 0, result.stderr
    # --store, the old spelling of --storage, still works and says so
    assert "note: --store is deprecated; use --storage" in result.stderr
    (dense_dir,) = (store / "artifacts").iterdir()
    dense_config = json.loads((dense_dir / "config.json").read_text())
    assert dense_config["optim"]["weight_decay"] == 0.5 and dense_config["train"]["steps"] == 250
    members = pd.read_parquet(tmp_path / "o" / "members.parquet")
    assert members["steps_run"].tolist() == [100] and members["prune_step"].tolist() == [250]


@pytest.mark.parametrize("args, message", [
    (["train", "tickt"], "did you mean 'ticket'"),
    (["train", "dense", "--set", "task.op=dvi"], "did you mean 'div'"),
    (["train", "dense", "--set", "model.name=cnn"], "model.name"),
    (["train", "dense", "--set", "task.name=text", "--set", "model.name=mlp"],
     "task.name=text takes model.name=lstm"),
    (["train", "dense", "--set", "optim.lrr=0.1"], "did you mean 'optim.lr'"),
    (["train", "dense", "--set", "task.p=abc"], "expected an integer"),
    (["train", "dense", "--set", "task.op=div", "--set", "task.p=20"], "prime"),
    (["train", "dense", "--set", "task.train_fraction=1.5"], "(0, 1)"),
    (["train", "ticket", "--rates", "0.5,1.0"], "[0, 1)"),
    (["train", "ticket", "--set", "prune.rate=1"], "[0, 1)"),
    (["train", "ticket", "--set", "prune.step=40000"], "not a checkpoint"),
    (["train", "dense", "--rates", "0.5"], "no pruning rate"),
    (["train", "dense", "--seeds", "a,b"], "--seeds"),
    (["train", "dense", "--set", "nodot"], "malformed override"),
    (["train", "dense", "--out", "/proc/grok-cannot-write"], "cannot write"),
    (["train", "dense", "--storage", "/proc/grok-cannot-write"], "cannot write"),
    (["train", "dense", "--device", "tpu"], "--device"),
    (["train", "dense", "--bogus"], "unrecognized arguments"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, grok, args, message):
    out = tmp_path / "out"
    extra = [] if "--out" in args else ["--out", str(out)]
    extra += [] if "--storage" in args else ["--storage", str(tmp_path / "store")]
    line = error_line(grok(*args, *extra))
    assert message in line, line
    assert list(tmp_path.iterdir()) == []


def test_the_console_script_refuses_bad_input_in_one_line(tmp_path):
    # the path a user takes: a fresh process, its imports, its exit code and streams
    result = run_grok("train", "dense", "--set", "optim.lrr=0.1", "--out", tmp_path / "o",
                      "--storage", tmp_path / "s")
    assert "did you mean 'optim.lr'" in error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_keys_lists_every_setting(grok):
    result = grok("keys")
    assert result.returncode == 0
    for key in ("task.op", "optim.weight_decay", "prune.step", "base.optim.*", "base.train.*"):
        assert key in result.stdout
