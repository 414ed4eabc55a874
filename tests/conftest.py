"""Shared fixtures: small, fast configs (p=13, a few hundred steps); ``grok``, the real entry
point called in this process on one shared local Ray; ``run_grok``, the console script in a
subprocess, for the tests that must kill a driver or read what a fresh process prints."""
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from grok_core.config import ExperimentConfig

torch.set_num_threads(1)

# Credentials for the tests' own S3 API server (tests/servers.py), set before any Ray starts so
# that every trial worker has them; never a real AWS account (and no instance-metadata lookups).
for _key, _value in {"AWS_ACCESS_KEY_ID": "grok-tests", "AWS_SECRET_ACCESS_KEY": "grok-tests",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"
                     }.items():
    os.environ[_key] = _value


@pytest.fixture
def small_config() -> ExperimentConfig:
    """A dense MLP on (a+b) mod 13 that trains in well under a second."""
    return ExperimentConfig().with_overrides([
        "task.p=13", "model.d_emb=32", "model.d_hidden=16", "train.steps=200",
        "train.eval_every=5", "train.checkpoint_every=50", "optim.lr=0.01"])


GROKKING_OVERRIDES = [
    "task.p=23", "task.pairs=all", "task.train_fraction=0.5", "model.d_emb=64",
    "model.d_hidden=32", "optim.lr=0.01", "train.steps=1000", "train.eval_every=10",
    "train.checkpoint_every=250"]


@pytest.fixture
def grokking_config() -> ExperimentConfig:
    """(a+b) mod 23 that memorises by step ~35 and generalises by step ~700 (about 1 s)."""
    return ExperimentConfig().with_overrides(GROKKING_OVERRIDES)


def as_ticket(config: ExperimentConfig, *overrides: str) -> ExperimentConfig:
    """A ticket of ``config`` whose dense run trains as ``config`` does: a ticket's own
    ``train.*`` never reaches its dense run, so the test's small budget goes to ``base.train``."""
    train = [f"base.train.{key}={value}" for key, value in
             dataclasses.asdict(config.train).items() if value is not None]
    return config.with_overrides(["recipe=ticket", *train, *overrides])


def sets(*overrides: str) -> list[str]:
    """``--set KEY=VALUE`` arguments for each override."""
    return [arg for override in overrides for arg in ("--set", override)]


# The tests' own size for end-to-end runs of --quick studies, given as --set after --quick: the
# quick size is chosen to show the paper's effects (search_spaces._common.QUICK), at a cost the
# test run cannot pay for every study. A small modular task (p=23, every pair, half of them for
# training) whose dense runs memorise by step ~80 and generalise by step ~1500, 3000 steps.
TINY_SIZE = ("task.p=23", "task.pairs=all", "task.train_fraction=0.5", "model.d_emb=64",
             "model.d_hidden=32", "optim.lr=0.003", "train.steps=3000", "train.checkpoint_every=500")
TINY = sets(*TINY_SIZE)
# a ticket's own train.* never reaches its dense run: the same budget for it, and an early stop
TINY_TICKET = [*TINY, *sets("train.stop_margin=500", "base.train.steps=3000",
                            "base.train.checkpoint_every=500")]


# --- the real `grok` in a subprocess ----------------------------------------------------------
def grok_command(*args) -> list[str]:
    """The command line of the real `grok` entry point, as a user runs it."""
    return [sys.executable, "-m", "sweeps.cli", *map(str, args)]


def grok_env(env=None) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}


def run_grok(*args, timeout=600, env=None):
    """Run the real `grok` entry point in a subprocess (as a user would): a process, and a
    local Ray, of its own. For tests that kill a driver, join another cluster or need a fresh
    process; the others call ``grok`` below."""
    return subprocess.run(grok_command(*args), capture_output=True, text=True,
                          env=grok_env(env), timeout=timeout)


# --- the real `grok` in this process, on one Ray for the whole session ----------------------
RAY_COMMANDS = {"sweep", "critical-ratio", "reproduce"}  # the commands that connect to Ray


@pytest.fixture(scope="session")
def shared_ray():
    """One local Ray for every in-process command that needs one, started as `grok sweep`
    starts its own (``sweeps.cluster.start_local_ray``); ``connect_ray`` reuses it. Shut down
    at the end of the session."""
    import ray

    from sweeps.cluster import start_local_ray

    assert not ray.is_initialized(), (
        "a test started a Ray of its own in this process: run commands through `grok`, or ask "
        "for `shared_ray` before connecting")
    start_local_ray()
    yield ray
    ray.shutdown()


class Finished(subprocess.CompletedProcess):
    """What ``grok`` returns: as ``subprocess.run`` would, so a test reads either alike."""


@pytest.fixture
def grok(request, capsys):
    """``grok(*args)``: ``sweeps.cli.main(args)`` in this process; returns the exit code and
    what it printed (``returncode``, ``stdout``, ``stderr``). Commands that use Ray get the
    session's shared one. The process environment is restored after each call (a command
    must not leave settings behind; ``environment_left`` lists what one changed)."""
    from sweeps.cli import main

    def run(*args):
        argv = [str(arg) for arg in args]
        if argv and argv[0] in RAY_COMMANDS:
            request.getfixturevalue("shared_ray")
        capsys.readouterr()  # what came before is not this command's
        before, had_ray = dict(os.environ), _ray_is_up()
        try:
            code = main(argv)
        finally:
            out, err = capsys.readouterr()
            run.environment_left = {k for k in set(before) | set(os.environ)
                                    if before.get(k) != os.environ.get(k)}
            os.environ.clear()
            os.environ.update(before)
        # a command that needs no Ray must not start one (nor leave it running here)
        assert had_ray or not _ray_is_up(), f"grok {' '.join(argv)} started a Ray"
        return Finished(argv, code, out, err)

    run.environment_left = set()
    return run


def _ray_is_up() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def error_line(result) -> str:
    """The one line a refused command prints, after checking it is exactly that: exit code 2,
    nothing on stdout, one stderr line starting ``grok: error:``, no traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stdout == "", result.stdout[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grok: error:"), lines
    assert "Traceback" not in result.stderr
    return lines[0]


@contextlib.contextmanager
def trial_worker_killed_mid_run(folder: Path):
    """While the block runs a sweep under ``folder``, SIGKILL its trial's worker (the pid in
    its reports) at the trial's second report: a checkpoint exists and training is under way.
    Yields a dict that then holds that ``report`` and the steps of the reports that ``saved``
    a checkpoint (empty if no trial got that far)."""
    killed, done = {}, threading.Event()

    def kill_the_worker_once_training():
        while not done.wait(0.1):
            for result_file in folder.glob("*/result.json"):
                try:
                    reports = [json.loads(line) for line in result_file.read_text().splitlines()
                               if line]
                except ValueError:  # a line half written
                    continue
                if len(reports) >= 2:
                    assert reports[-1]["pid"] != os.getpid()  # a trial worker, not the driver
                    os.kill(reports[-1]["pid"], signal.SIGKILL)
                    # checkpoints are spaced in time: the trial resumes from the last one saved
                    killed.update(report=reports[-1], saved=[
                        r["step"] for r in reports if r.get("checkpoint_dir_name")])
                    return

    watcher = threading.Thread(target=kill_the_worker_once_training, daemon=True)
    watcher.start()
    try:
        yield killed
    finally:
        done.set()
        watcher.join()


# --- real storage servers, one of each per session (tests/servers.py) ------------------------
@pytest.fixture(scope="session")
def s3_server():
    """An S3 API server on 127.0.0.1 (moto's server mode) with the bucket ``grok``."""
    from servers import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (Debian's PostgreSQL 15 binaries)."""
    from servers import PostgresServer, postgres_available

    if not postgres_available():
        pytest.skip("PostgreSQL 15 binaries not installed (/usr/lib/postgresql/15/bin)")
    server = PostgresServer()
    yield server
    server.stop()
