"""The critical-ratio search: the fit, the sampler in plain Optuna (seconds), and
`grok critical-ratio` end to end on local Ray (in this process, on the session's shared Ray),
killed (a driver process of its own) and continued."""
import contextlib
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest

import analysis
from analysis.critical_ratio import estimate_edges, fit_threshold, seed_edges
from conftest import TINY_TICKET, error_line, grok_command, grok_env
from sweeps.critical_ratio_sampler import ThresholdSampler, search, trial_outcomes

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- the fit ---------------------------------------------------------------------------------
def test_fit_of_separated_outcomes_lies_in_the_gap_and_its_interval_spans_it():
    fit = fit_threshold([0.70, 0.75, 0.78, 0.79, 0.80, 0.82, 0.85], [1, 1, 1, 1, 0, 0, 0])
    assert fit.status == "ok" and fit.n == 7
    assert 0.79 < fit.estimate < 0.80
    assert fit.ci_low <= 0.79 and fit.ci_high >= 0.80 and fit.ci_high - fit.ci_low < 0.05


def test_fit_of_noisy_outcomes_finds_the_planted_edge_and_covers_it():
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.6, 0.95, 400)
    generalised = rng.random(400) < 1 / (1 + np.exp((rates - 0.8) / 0.01))
    fit = fit_threshold(rates, generalised)
    assert abs(fit.estimate - 0.8) < 0.005 and fit.ci_low < 0.8 < fit.ci_high
    assert 0.005 < fit.width < 0.02
    low, high = fit.band([0.7, 0.8, 0.9])
    assert (low <= fit.probability([0.7, 0.8, 0.9]) + 1e-12).all()
    assert (fit.probability([0.7, 0.8, 0.9]) <= high + 1e-12).all()


def test_fit_of_all_successes_or_none_says_where_the_edge_lies():
    above = fit_threshold([0.5, 0.6, 0.7], [1, 1, 1])
    assert above.status == "above" and math.isnan(above.estimate) and above.ci_low == 0.7
    below = fit_threshold([0.5, 0.6, 0.7], [0, 0, 0])
    assert below.status == "below" and below.ci_high == 0.5
    assert "above every tested rate" in above.describe()


def test_rising_flank_fit_finds_the_lower_edge():
    fit = fit_threshold([0.5, 0.55, 0.6, 0.62, 0.7], [0, 0, 0, 1, 1], falling=False)
    assert fit.status == "ok" and 0.6 < fit.estimate < 0.62 and not fit.falling
    assert fit.probability([0.5])[0] < 0.5 < fit.probability([0.7])[0]


def test_edges_per_seed_bracket_and_seeds_without_a_window_are_counted():
    members = pd.DataFrame({
        "seed": [0] * 5 + [1] * 5 + [2] * 2,
        "pruning_rate": [0.5, 0.6, 0.8, 0.81, 0.9, 0.5, 0.7, 0.75, 0.76, 0.9, 0.7, 0.8],
        "generalised": [0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0]})
    edges = seed_edges(members).set_index("seed")
    assert edges.loc[0, "upper_edge"] == 0.8 and edges.loc[0, "upper_fail"] == 0.81
    assert edges.loc[0, "upper_resolved"] and not edges.loc[0, "lower_resolved"]
    assert edges.loc[1, "lower_edge"] == 0.7 and edges.loc[1, "lower_fail"] == 0.5
    assert not edges.loc[2, "has_window"]
    assert edges["failures_inside"].tolist() == [0, 0, 0]
    bumpy = pd.DataFrame({"seed": 0, "pruning_rate": [0.6, 0.7, 0.72, 0.75, 0.8],
                          "generalised": [1, 1, 0, 1, 0]})
    assert seed_edges(bumpy).loc[0, "failures_inside"] == 1  # fails at 0.72, not at 0.75
    estimate = estimate_edges(members)
    assert estimate.seeds_without_window == [2]
    assert 0.75 < estimate.upper.estimate < 0.81 and 0.5 < estimate.lower.estimate < 0.7
    # seed 2 generalised nowhere: counted, and left out of the fits (its failures say nothing
    # about where an edge lies)
    assert estimate.upper == estimate_edges(members[members["seed"] != 2]).upper
    assert any("seeds without a window: 1 of 3" in line for line in estimate.summary_lines())


# --- the sampler, in plain Optuna -------------------------------------------------------------
def _window(lower, upper, members=1):
    """A deterministic objective: generalises inside (lower, upper)."""
    def objective(trial):
        rate = trial.suggest_float("pruning_rate", 0.5, 0.95)
        trial.set_user_attr("n_members", members)
        return float(lower < rate < upper)
    return objective


def test_threshold_sampler_finds_a_planted_edge_in_plain_optuna():
    study = search(_window(-1, 0.777), 0.5, 0.95, trials=25)
    rates, outcomes = trial_outcomes(study.trials)
    fit = fit_threshold(rates, outcomes)
    assert abs(fit.estimate - 0.777) < 0.003 and fit.ci_low <= 0.777 <= fit.ci_high
    # its trials gather at the edge, unlike a grid
    assert np.mean(np.abs(rates[10:] - 0.777) < 0.02) > 0.8


def test_threshold_sampler_finds_both_edges_of_a_window():
    study = search(_window(0.63, 0.81, members=2), 0.5, 0.95, trials=40)
    rates, outcomes = trial_outcomes(study.trials)
    estimate = estimate_edges(pd.DataFrame({"seed": 0, "pruning_rate": rates,
                                            "generalised": outcomes.astype(bool)}))
    assert abs(estimate.upper.estimate - 0.81) < 0.005
    assert abs(estimate.lower.estimate - 0.63) < 0.01


def test_parallel_asks_do_not_pile_up_on_one_rate():
    study = optuna.create_study(direction="maximize",
                                sampler=ThresholdSampler(0.5, 0.95, seed=3))
    study.optimize(_window(-1, 0.8), n_trials=12)
    asked = [study.ask() for _ in range(4)]  # four trials running at once
    rates = sorted(t.suggest_float("pruning_rate", 0.5, 0.95) for t in asked)
    assert min(np.diff(rates)) >= 0.0025 - 1e-9, rates


@pytest.mark.parametrize("sampler", ["threshold", "random"])
def test_a_resumed_study_continues_instead_of_replaying_its_first_rates(tmp_path, sampler):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = search(_window(-1, 0.8), 0.5, 0.95, trials=8, sampler=sampler, storage=url,
                   study_name="s")
    before = [t.params["pruning_rate"] for t in first.trials]
    resumed = search(_window(-1, 0.8), 0.5, 0.95, trials=14, sampler=sampler, storage=url,
                     study_name="s")
    after = [t.params["pruning_rate"] for t in resumed.trials]
    assert after[:8] == before and len(after) == 14
    assert not set(after[8:]) & set(before), (before, after)


def test_trial_outcomes_leave_out_seeds_without_a_window():
    trials = [optuna.trial.create_trial(
        params={"pruning_rate": rate}, distributions={
            "pruning_rate": optuna.distributions.FloatDistribution(0.5, 0.95)},
        value=sum(ok) / 2, user_attrs={"n_members": 2, "members": [
            {"seed": 0, "generalised": ok[0]}, {"seed": 1, "generalised": ok[1]}]})
        for rate, ok in ((0.6, (True, False)), (0.9, (False, False)))]
    rates, outcomes = trial_outcomes(trials)
    assert rates.tolist() == [0.6, 0.9] and outcomes.tolist() == [1.0, 0.0]


def test_grid_sampler_walks_the_resolution():
    study = search(_window(-1, 0.8), 0.5, 0.6, trials=11, sampler="grid")
    assert sorted(round(t.params["pruning_rate"], 6) for t in study.trials) == [
        round(0.5 + 0.01 * i, 6) for i in range(11)]


# --- grok critical-ratio, end to end -----------------------------------------------------------
SMALL = ["--quick", *TINY_TICKET, "--set", "train.steps=600", "--set", "base.train.steps=600",
         "--set", "base.train.checkpoint_every=300", "--report-every", "200"]


def test_critical_ratio_quick_end_to_end_then_load_study_from_a_plain_shell(tmp_path, grok):
    storage = tmp_path / "s"
    result = grok("critical-ratio", *SMALL, "--trials", "3", "--storage", storage)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dense phase: the dense runs several trials share, trained once first (seeds 0,1," \
        in result.stderr
    assert "critical_ratio_search-quick" in result.stdout and "600 steps" in result.stdout
    folder = storage / "critical_ratio_search-quick"
    for name in ("critical.json", "study.db", "members.parquet", "estimate.json", "summary.png"):
        assert (folder / name).exists(), name
    shell = subprocess.run([sys.executable, "-c", (
        "import optuna\n"
        "s = optuna.load_study(study_name='critical_ratio_search-quick', "
        f"storage='sqlite:///{folder}/study.db')\n"
        "for t in s.trials:\n"
        "    m = t.user_attrs['members']\n"
        "    print(t.state.name, t.params['pruning_rate'], t.value, len(m), sorted(x['seed'] for x in m),"
        " all(set(x) >= {'seed', 'pruning_rate', 'generalised', 't_gen'} for x in m))\n"
        "print('estimate' in s.user_attrs)")], capture_output=True, text=True)
    assert shell.returncode == 0, shell.stderr
    lines = shell.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[-1] == "True"
    assert all(line.startswith("COMPLETE") and line.endswith("2 [0, 1] True")
               for line in lines[:3]), lines
    members = pd.read_parquet(folder / "members.parquet")
    assert len(members) == 6 and set(members["seed"]) == {0, 1}
    shown = grok("results", folder)
    assert shown.returncode == 0 and "member outcomes per rate" in shown.stdout
    again = grok("critical-ratio", *SMALL, "--trials", "3", "--storage", storage)
    assert again.returncode == 0 and "3 finished trial(s), 0 to go" in again.stderr
    changed = grok("critical-ratio", *SMALL, "--trials", "3", "--storage", storage,
                   "--set", "train.steps=700")
    assert "train.steps" in error_line(changed)

    other = grok("critical-ratio", *SMALL, "--trials", "2", "--storage", storage,
                 "--name", "narrow", "--low", "0.6", "--sampler", "random")
    assert other.returncode == 0 and "dense runs" in other.stderr and "in the store" in other.stderr
    table = analysis.critical_ratios(str(storage)).set_index("name")
    assert list(table.index) == ["critical_ratio_search-quick", "narrow"]
    assert table.loc["narrow", "low"] == 0.6 and table.loc["critical_ratio_search-quick", "low"] == 0.3
    assert table["steps"].tolist() == [600, 600] and table["members"].tolist() == [6, 4]
    assert table["trials"].tolist() == [3, 2]

    # the transformer's search runs beside the MLP's, under its own name; one table has both
    small_transformer = grok("critical-ratio", *SMALL, "--trials", "1", "--storage", storage,
                             "--set", "model.name=transformer", "--set", "model.d_emb=16",
                             "--set", "model.d_hidden=16", "--set", "train.steps=200",
                             "--set", "base.train.steps=300")
    assert small_transformer.returncode == 0, small_transformer.stderr[-3000:]
    table = analysis.critical_ratios(str(storage)).set_index("name")
    assert table.loc["critical_ratio_search-transformer-quick", "model"] == "transformer"
    assert table.loc["critical_ratio_search-quick", "model"] == "mlp"
    assert bool(table.loc["critical_ratio_search-transformer-quick", "model.pos_embed"]) is False

    restarted = grok("critical-ratio", *SMALL, "--trials", "1", "--storage", storage,
                     "--name", "narrow", "--low", "0.6", "--restart")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert "the old search is now" in restarted.stderr
    kept = analysis.critical_ratio.load(str(storage / "narrow.restarted-1"))
    assert kept.trials == 2 and analysis.critical_ratio.load(str(storage / "narrow")).trials == 1


def _states(db):
    """Trial number -> state, read without writing: opening the file as an Optuna storage
    would create its tables, racing the driver that is creating them."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT t.number, t.state FROM trials t JOIN studies s ON t.study_id = s.study_id "
            "WHERE s.study_name = 'critical_ratio_search-quick'").fetchall()
    return dict(rows)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_killed_driver_leaves_stale_trials_that_the_rerun_fails_and_replaces(
        tmp_path, grok, request, database):
    storage = tmp_path / "s"
    args = ["critical-ratio", "--quick", *TINY_TICKET, "--trials", "4", "--report-every", "250",
            "--set", "base.train.steps=1500", "--set", "base.train.checkpoint_every=500",
            "--storage", str(storage)]
    if database == "postgresql":  # a real server (tests/servers.py), psycopg 3
        url = request.getfixturevalue("postgres").create_database("killed", "psycopg2")
        args += ["--study-storage", url]
        states_now = lambda: _postgres_states(url)  # noqa: E731
    else:
        db = storage / "critical_ratio_search-quick" / "study.db"
        states_now = lambda: _states(db) if db.exists() else {}  # noqa: E731
    log = tmp_path / "driver.log"
    with open(log, "wb") as out:
        driver = subprocess.Popen(grok_command(*args), stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True, env=grok_env())
    deadline, states = time.time() + 480, {}
    while time.time() < deadline and driver.poll() is None:
        time.sleep(0.5)
        try:
            states = states_now()
        except Exception:  # noqa: BLE001 - the driver is creating its tables
            continue
        if "COMPLETE" in states.values() and "RUNNING" in states.values():
            break
    exited = driver.poll()
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait()
    assert exited is None and "COMPLETE" in states.values(), (
        f"the driver {'exited ' + str(exited) if exited is not None else 'still ran'} with "
        f"trials {states}; its output ends:\n{log.read_text()[-3000:]}")
    before = states_now()
    done = {n for n, s in before.items() if s == "COMPLETE"}
    stale = {n for n, s in before.items() if s == "RUNNING"}
    assert done and stale and len(done) < 4, before

    rerun = grok(*args)  # in this process: a driver, and a Ray, other than the killed one
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "marked" in rerun.stderr and "stale" in rerun.stderr
    after = states_now()
    assert all(after[n] == "COMPLETE" for n in done)       # nothing finished is lost or rerun
    assert all(after[n] == "FAIL" for n in stale)          # nor counted, nor RUNNING forever
    assert list(after.values()).count("COMPLETE") == 4 and "RUNNING" not in after.values()


def _postgres_states(url: str) -> dict:
    """Trial number -> state of the search's study in PostgreSQL, read with a plain query."""
    import psycopg

    plain = url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(plain.replace("postgresql+psycopg://", "postgresql://")) as connection:
        rows = connection.execute(
            "SELECT t.number, t.state FROM trials t JOIN studies s ON t.study_id = s.study_id "
            "WHERE s.study_name = 'critical_ratio_search-quick'").fetchall()
    return dict(rows)


# the tests' own heartbeat storage: Optuna flags heartbeats experimental and meant for optimize()
QUIET_HEARTBEATS = pytest.mark.filterwarnings(
    "ignore::optuna.exceptions.ExperimentalWarning",
    "ignore:Heartbeat of storage is supposed to be used:UserWarning")


def _heartbeat_study(tmp_path):
    from optuna.storages import RDBStorage
    rdb = RDBStorage(f"sqlite:///{tmp_path / 'beats.db'}", heartbeat_interval=1, grace_period=1)
    return optuna.create_study(study_name="beats", storage=rdb, direction="maximize"), rdb


@QUIET_HEARTBEATS
def test_a_trial_killed_between_ask_and_its_first_beat_is_failed_too(tmp_path):
    from sweeps.optuna_study import fail_stale_trials
    study, rdb = _heartbeat_study(tmp_path)
    beaten, _ = study.ask(), study.ask()  # the driver died before beating the second
    rdb.record_heartbeat(beaten._trial_id)
    lines = []
    assert fail_stale_trials(study, lines.append, wait=4) == 2
    assert {t.state.name for t in study.trials} == {"FAIL"} and "2 trial(s)" in lines[0]


@QUIET_HEARTBEATS
def test_trials_a_live_driver_keeps_beating_are_left_alone(tmp_path):
    import threading
    from sweeps.optuna_study import ConfigError, fail_stale_trials
    study, rdb = _heartbeat_study(tmp_path)
    trial, stop = study.ask(), threading.Event()

    def beat():
        while not stop.wait(0.3):
            rdb.record_heartbeat(trial._trial_id)
    beater = threading.Thread(target=beat)
    beater.start()
    try:
        with pytest.raises(ConfigError, match="fresh heartbeats"):
            fail_stale_trials(study, lambda line: None, wait=2.5)
    finally:
        stop.set()
        beater.join()
    assert study.trials[0].state.name == "RUNNING"


@pytest.mark.parametrize("args, message", [
    (["--low", "1.2"], "--low"),
    (["--low", "0.9", "--high", "0.5"], "must be below"),
    (["--sampler", "annealing"], "--sampler"),
    (["--trials", "0"], "--trials"),
    (["--study-storage", "sqlite:////proc/grok-no-such-dir/study.db"], "cannot open"),
    (["--set", "optim.lr=fast"], "optim.lr"),
    (["--address", "127.0.0.1:9"], "no Ray cluster reachable"),
])
def test_critical_ratio_bad_input_one_line_exit_2(tmp_path, grok, args, message):
    result = grok("critical-ratio", "--quick", *args, "--storage", tmp_path / "s")
    assert message in error_line(result)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_drivers_opening_one_new_study_storage_at_once_both_succeed(
        tmp_path, request, database):
    """Creating a fresh storage's tables races: unguarded, the loser of two simultaneous opens
    fails ("table studies already exists", 10 of 10 pairs of threads here)."""
    import threading
    from sweeps.optuna_study import open_study_storage
    errors = []
    for pair in range(5):
        url = (request.getfixturevalue("postgres").create_database(f"race{pair}")
               if database == "postgresql" else f"sqlite:///{tmp_path}/study{pair}.db")
        barrier = threading.Barrier(2)

        def open_together(url=url, barrier=barrier):
            barrier.wait()
            try:
                open_study_storage(url, heartbeat=False)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)
        threads = [threading.Thread(target=open_together) for _ in range(2)]
        [thread.start() for thread in threads]
        [thread.join() for thread in threads]
    assert not errors, errors


def test_the_scan_goes_on_while_no_seed_has_generalised_anywhere():
    # outcomes of seeds without a window are left out of the fit; their rates still count as
    # tried, so the scan reaches the one narrow window instead of repeating its first points
    def objective(trial):  # two seeds, as grok critical-ratio's trials record them
        rate = trial.suggest_float("pruning_rate", 0.5, 0.95)
        trial.set_user_attr("members", [{"seed": seed, "generalised": 0.69 < rate < 0.71}
                                        for seed in (0, 1)])
        return float(0.69 < rate < 0.71)

    study = search(objective, 0.5, 0.95, trials=10)
    rates = [t.params["pruning_rate"] for t in study.trials]
    assert len(set(rates)) == 10 and 0.7 in rates, rates
