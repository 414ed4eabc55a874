"""`grok sweep` on a real local Ray, then `grok results` and `analysis.load` on what it wrote.

The commands run in this process (``grok``: ``sweeps.cli.main`` on the session's one local Ray);
the tests that kill or interrupt a driver start it as a process of its own, with its own Ray.
"""
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pandas as pd
import pytest

import analysis
import analysis.results as results
from conftest import (TINY, TINY_TICKET, error_line, grok_command, grok_env, run_grok,
                      trial_worker_killed_mid_run)

SMALL = [*TINY, "--set", "train.steps=400", "--set", "train.checkpoint_every=200", "--report-every", "100"]
# a ticket's own train.* never reaches its dense run: ticket spaces shorten those too
SMALL_TICKET = [*SMALL, "--set", "base.train.steps=400", "--set", "base.train.checkpoint_every=200"]


def test_sweep_shares_dense_runs_then_loads_resumes_and_aggregates(tmp_path, grok):
    storage = tmp_path / "sweeps"
    command = ["sweep", "pruning_rate", "--quick", *SMALL_TICKET, "--rates", "0,0.3,0.6,0.9",
               "--max-cohort", "2", "--storage", storage, "--name", "pr"]
    first = grok(*command)
    assert first.returncode == 0, first.stderr[-3000:]
    assert grok.environment_left == set()  # Tune's settings were for the fit only
    # 2 seeds x 4 rates, at most 2 members per trial: a trial per seed and pair of rates, so
    # two trials need each dense run: the dense phase trains them once for all
    assert "sweep pr: 4 trial(s)" in first.stderr
    assert "dense phase: the dense runs several trials share, trained once first (seeds 0,1," \
        in first.stderr

    loaded = analysis.load(str(storage / "pr"))  # the spelling users are told
    assert loaded.trials["finished"].tolist() == [True] * 4
    assert loaded.study == "pruning_rate" and loaded.title().startswith("pr (study pruning_rate)")
    pd.testing.assert_frame_equal(analysis.aggregate(loaded.members),
                                  results.aggregate(loaded.members))
    assert "_store" not in loaded.trials.columns  # private settings never reach the params
    pairs = sorted(zip(loaded.members["seed"], loaded.members["pruning_rate"]))
    assert pairs == sorted(itertools.product([0, 1], [0.0, 0.3, 0.6, 0.9]))  # each exactly once
    assert {"task.p", "optim.lr", "t_mem", "t_gen", "tau_grok", "final_test_acc"} <= set(
        loaded.members.columns)
    assert (loaded.members["task.p"] == 23).all()
    assert len(loaded.curves) == 8 * (400 // 10 + 1)
    # the tickets found their dense runs in the store: trained once, by the dense phase
    assert sorted(loaded.base["seed"]) == [0, 1] and not loaded.base["trained"].any()
    dense = results.load(str(storage / "pr.dense"))
    assert sorted(dense.members["seed"]) == [0, 1] and (dense.members["recipe"] == "dense").all()
    # a ticket at rate 0 is the dense run itself, retrained from theta_0: same numbers
    rate0 = loaded.members[loaded.members["pruning_rate"] == 0.0].sort_values("seed")
    assert rate0["t_mem"].tolist() == dense.members.sort_values("seed")["t_mem"].tolist()

    # a checkpoint cut short (a kill while Tune copied it) leaves the one before it readable
    cut = tmp_path / "cut"
    shutil.copytree(storage / "pr", cut)
    trial_dir = sorted(p for p in cut.iterdir() if (p / "params.json").exists())[0]
    newest = sorted(trial_dir.glob("checkpoint_*"))[-1]
    (newest / "members.parquet").write_bytes((newest / "members.parquet").read_bytes()[:100])
    (newest / "curves.parquet").write_bytes(b"")
    damaged = results.load(str(cut))
    assert damaged.trials["finished"].tolist() == [False, True, True, True]
    # (checkpoints are spaced in time: the one before the final one is the first, at step 100)
    assert 0 < damaged.curves[damaged.curves["trial"] == trial_dir.name]["step"].max() < 400

    assert (storage / "pr" / "summary.png").read_bytes()[:4] == b"\x89PNG"  # the sweep drew itself
    assert sorted(set(loaded.base_curves["seed"])) == [0, 1]  # dense curves, for the figure

    table_path, figure_path = tmp_path / "table.csv", tmp_path / "sweep.png"
    shown = grok("results", storage / "pr", "--csv", table_path, "--figure", figure_path)
    assert shown.returncode == 0, shown.stderr
    assert figure_path.read_bytes()[:4] == b"\x89PNG" and figure_path.stat().st_size > 20_000
    assert "4/4 trials finished, 8 members" in shown.stdout
    table = pd.read_csv(table_path)
    assert table["pruning_rate"].tolist() == [0.0, 0.3, 0.6, 0.9]
    assert table["runs"].tolist() == [2, 2, 2, 2]

    again = grok(*command)  # same name: resumes; nothing is rerun or duplicated
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stderr and "dense phase" not in again.stderr
    reloaded = results.load(str(storage / "pr"))
    pd.testing.assert_frame_equal(reloaded.members, loaded.members)

    other = grok(*command[:-4], "--rates", "0.5", *command[-4:])  # same name, other rates
    assert "started with other settings (differs in rates)" in error_line(other)
    pd.testing.assert_frame_equal(results.load(str(storage / "pr")).members, loaded.members)

    fresh = grok(*command, "--restart")  # starts over; the old sweep is kept aside
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "starting" in fresh.stderr and (storage / "pr.restarted-1").is_dir()
    restarted = results.load(str(storage / "pr")).members
    assert len(restarted) == 8 and set(restarted["trial"]).isdisjoint(loaded.members["trial"])


SWEEP_BAD_INPUT = [
    (["sweep", "pruning_rte"], "did you mean 'pruning_rate'"),
    (["sweep", "lr_wd", "--set", "optim.lr=fast"], "expected a finite number"),
    (["sweep", "lr_wd", "--set", "optim.lrr=0.1"], "did you mean 'optim.lr'"),
    (["sweep", "lr_wd", "--address", "127.0.0.1:1"], "no Ray cluster reachable"),
    (["sweep", "lr_wd", "--storage", "/proc/grok-cannot-write"], "cannot write"),
    (["sweep", "lr_wd", "--quick", "--gpus-per-trial", "1"], "GPU"),
    (["sweep", "lr_wd", "--rates", "0.5"], "no pruning rate"),
    (["sweep", "pruning_rate", "--rates", "0.5,1.5"], "--rates"),
    (["sweep", "pruning_rate", "--max-cohort", "0"], "--max-cohort"),
    (["results", "/nonexistent/sweep"], "no sweep at"),
]


def _refused_before_any_work(result, tmp_path, message):
    assert message in error_line(result)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


@pytest.mark.parametrize("args, message", SWEEP_BAD_INPUT)
def test_sweep_bad_input_one_line_exit_2(tmp_path, grok, args, message):
    # in this process, on the session's Ray: an --address is checked although Ray is up
    extra = [] if "--storage" in args or args[0] == "results" else ["--storage", tmp_path / "s"]
    _refused_before_any_work(grok(*args, *extra), tmp_path, message)


def test_the_console_script_refuses_an_unreachable_cluster_in_one_line(tmp_path):
    # a fresh process, with no Ray of its own yet: refused before Ray would wait for it
    result = run_grok("sweep", "lr_wd", "--address", "127.0.0.1:1", "--storage", tmp_path / "s")
    _refused_before_any_work(result, tmp_path, "no Ray cluster reachable")


def test_an_address_other_than_the_connected_cluster_is_refused(tmp_path, grok, shared_ray):
    # something listens there, but this process is connected to another Ray (the shared one):
    # the sweep must not silently run on the wrong cluster
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        result = grok("sweep", "lr_wd", "--quick", "--address", address,
                      "--storage", tmp_path / "s")
    _refused_before_any_work(result, tmp_path, "already connected to the Ray cluster at")


def _finished_trials(path):
    return list(path.glob("*/checkpoint_*/members.parquet")) if path.exists() else []


def _comparable(members):
    columns = ["seed", "pruning_rate", "t_mem", "t_gen", "tau_grok", "final_test_acc"]
    return members[columns].sort_values(["seed", "pruning_rate"]).reset_index(drop=True)


def test_a_killed_driver_resumes_to_the_uninterrupted_results(tmp_path, grok):
    # one storage root: the killed sweep reuses the dense runs the reference sweep trained
    storage = tmp_path / "s"
    args = ["sweep", "pruning_rate", "--quick", *TINY_TICKET, "--set", "train.steps=1500", "--rates",
            "0,0.3,0.6,0.9", "--report-every", "250", "--max-cohort", "2",
            "--set", "base.train.steps=1500", "--set", "base.train.checkpoint_every=500",
            "--storage", str(storage)]
    reference = grok(*args, "--name", "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]

    args += ["--name", "pr"]
    driver = subprocess.Popen(grok_command(*args), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True, env=grok_env())
    deadline = time.time() + 300
    while not _finished_trials(storage / "pr") and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait()
    finished = len(_finished_trials(storage / "pr"))
    assert 1 <= finished < 4

    partial = results.load(str(storage / "pr"))  # a partial sweep reads too
    assert partial.trials["finished"].sum() >= finished and len(partial.members) == 2 * len(
        partial.trials[partial.trials["finished"]])
    assert partial.curves[["seed", "pruning_rate"]].notna().all().all()

    resumed = grok(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr
    done = results.load(str(storage / "pr")).members
    pd.testing.assert_frame_equal(_comparable(done), _comparable(
        results.load(str(storage / "reference")).members))


def test_a_killed_trial_worker_resumes_from_its_checkpoint(tmp_path, grok):
    # the trial is killed at its second report; 80,000 steps (~6 s on an idle core; 8,000 took
    # that long before the compiled kernels and inference mode, 40,000 before the bound pass,
    # and neither sufficed on a loaded machine) leave it mid-run however late that report
    # reaches storage (with Tune's experiment state, ~2 s)
    steps = 80_000
    settings = [*TINY, "--set", "optim.lr=0.01", "--set", "optim.weight_decay=1",
                "--set", f"train.steps={steps}", "--seeds", "0"]
    storage = tmp_path / "sweeps"
    with trial_worker_killed_mid_run(storage / "one") as killed:
        result = grok("sweep", "lr_wd", "--quick", *settings, "--report-every", "1000",
                      "--name", "one", "--storage", storage)
    assert killed and result.returncode == 0, result.stderr[-3000:]
    (result_file,) = (storage / "one").glob("*/result.json")
    final = json.loads(result_file.read_text().splitlines()[-1])
    assert final["done_training"] and final["step"] == steps
    assert final["resumed_from_step"] >= killed["saved"][-1] > 0
    assert final["pid"] != killed["report"]["pid"]
    assert final["device"] == "cpu"  # no GPU asked for (with --gpus-per-trial: "cuda")

    alone = grok("train", "dense", *settings, "--set", "task.p=23", "--set", "task.pairs=all",
                 "--set", "task.train_fraction=0.5", "--set", "model.d_emb=64",
                 "--set", "model.d_hidden=32", "--set", "train.checkpoint_every=500",
                 "--storage", tmp_path / "store", "--out", tmp_path / "out", "--json")
    (row,) = json.loads(alone.stdout)
    (member,) = results.load(str(storage / "one")).members.to_dict("records")
    assert (member["t_mem"], member["t_gen"]) == (row["t_mem"], row["t_gen"])
    assert member["final_test_acc"] == pytest.approx(row["final_test_acc"], abs=0)


def test_ctrl_c_stops_the_sweep_with_exit_130_and_a_rerun_finishes_it(tmp_path, grok):
    args = ["sweep", "lr_wd", "--quick", *TINY, "--set", "optim.lr=0.01", "--set", "optim.weight_decay=1",
            "--set", "train.steps=80000", "--seeds", "0", "--report-every", "200", "--name", "c",
            "--storage", str(tmp_path)]
    driver = subprocess.Popen(grok_command(*args), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True,
                              env=grok_env())
    deadline = time.time() + 300
    while time.time() < deadline and driver.poll() is None and not any(
            len(f.read_text().splitlines()) >= 2 for f in (tmp_path / "c").glob("*/result.json")):
        time.sleep(0.1)
    # (the run is long enough, ~6 s on one core in 2026-12's engine, that Ctrl-C lands mid-run
    # even though result.json reaches storage only with Tune's experiment state, every 2 s;
    # 15,000 steps took ~1 s, and in a loaded suite the trial finished first)
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    _, err = driver.communicate(timeout=300)
    assert driver.returncode == 130, err[-3000:]
    assert "interrupted: 1 of 1 trial(s)" in err and "rerun the same command" in err
    assert results.load(str(tmp_path / "c")).members.empty  # nothing passed off as finished

    resumed = grok(*args)
    assert resumed.returncode == 0 and "resuming" in resumed.stderr, resumed.stderr[-3000:]
    assert len(results.load(str(tmp_path / "c")).members) == 1


def test_a_ticket_trial_training_its_own_dense_runs_shows_their_progress(tmp_path, grok):
    result = grok("sweep", "headline", "--quick", *TINY_TICKET, "--seeds", "0", "--rates", "0.6",
                  "--set", "train.steps=200", "--report-every", "500",
                  "--storage", tmp_path, "--name", "own")
    assert result.returncode == 0, result.stderr[-3000:]
    (result_file,) = (tmp_path / "own").glob("*/result.json")
    reports = [json.loads(line) for line in result_file.read_text().splitlines() if line]
    phases = [r["phase"] for r in reports]
    # the quick dense run (3000 steps) reports every 500 steps before the ticket trains
    assert phases[:5] == ["dense"] * 5 and phases[-1] == "done", phases
    assert [r["step"] for r in reports[:5]] == [500, 1000, 1500, 2000, 2500]
    assert not any(r.get("_store") for r in reports)


def test_a_ctrl_c_as_the_last_trial_finishes_is_not_lost(tmp_path, shared_ray):
    """Tune's SIGINT handler stops a run gracefully and puts back the handler it found, but
    leaves itself installed after a run nobody stopped: a later Ctrl-C (between studies of
    `grok reproduce`) was swallowed, and one as the last trial finished left no unfinished
    trial to show for it (the command went on). Either way it now stops: SweepInterrupted,
    and the handler from before the run is back."""
    from sweeps.tune_runner import SweepInterrupted, TuneRun, fit, unfinished_trials

    def trial(config, store, report_every):  # defined here: the workers get it by value
        """Finishes its work, then Ctrl-Cs the driver while Tune still runs (it sleeps before
        returning), as a user's Ctrl-C lands when the last trial is done."""
        from ray import tune

        tune.report({"done_training": True})
        if config["driver"]:
            os.kill(config["driver"], signal.SIGINT)
            time.sleep(2.0)

    def run(name, driver):
        return fit(TuneRun(trial, {"driver": driver}, name, str(tmp_path), str(tmp_path),
                           restore=False))

    heard = []
    before = signal.signal(signal.SIGINT, lambda *_: heard.append("late"))  # never pytest's
    try:
        ours = signal.getsignal(signal.SIGINT)
        assert not unfinished_trials(run("quiet", 0))  # nobody pressed Ctrl-C: the grid
        assert signal.getsignal(signal.SIGINT) is ours  # and the handler as it was
        with pytest.raises(SweepInterrupted, match=r"interrupted \(Ctrl-C\)"):
            run("stopped", os.getpid())
        assert signal.getsignal(signal.SIGINT) is ours
        assert heard == []  # Tune's handler took it, during the run
    finally:
        signal.signal(signal.SIGINT, before)
