"""A two-node Ray cluster on this machine: `grok sweep --address` runs trials on both nodes.

Each node has its own temp and working folders, as on two machines, and the sweep's only
storage is a bucket on a real S3 API server (``tests/servers.py``).

The test starts a head node and a second node with `ray start` (token authentication, as Ray
2.60 has it by default), in a temp dir of its own, and stops only the processes under that dir.
The cluster gets a token of its own (``RAY_AUTH_TOKEN``), given to both nodes and the client:
`ray start --head` refuses to start without one, and ``~/.ray/auth_token`` exists only once some
local ``ray.init()`` made it (on a fresh machine, when this test runs first, it does not).
"""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import TINY, run_grok


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now (all held at once while chosen, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _processes_under(marker: str) -> set[int]:
    """PIDs whose command line names ``marker``, and all their descendants."""
    parents, roots = {}, set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    roots.add(int(entry))
            with open(f"/proc/{entry}/stat") as handle:
                parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    found, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _stop(marker: str, grace: float = 2.0) -> None:
    """SIGTERM to every process under ``marker``; SIGKILL to those still there after
    ``grace`` seconds; returns once none is left (or after another ``grace``)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _processes_under(marker)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = {pid for pid in pids if _alive(pid)}
        if not pids:
            return


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ray_start(args: list[str], env: dict, cwd: str) -> subprocess.CompletedProcess:
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    return subprocess.run([ray, "start", *args], env=env, capture_output=True, text=True,
                          timeout=180, cwd=cwd)


def _node_folders(temp: str, node: str) -> tuple[str, str]:
    """(temp dir, working folder) of one node: each node its own, as on separate machines."""
    folders = os.path.join(temp, node), os.path.join(temp, f"{node}-work")
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    return folders


def _explain(what: str, result: subprocess.CompletedProcess) -> str:
    return (f"`ray start` ({what}) exited {result.returncode}\n--- stdout ---\n"
            f"{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}")


def _start_cluster(env: dict) -> tuple[str, str, list[str]]:
    """(address, temp dir, failures): a head and a second node, each with one CPU, on fresh
    ports. Ray's fixed default ports (dashboard agent 52365, ...) may still be held by the Ray of
    an earlier test shutting down on a loaded machine, so every port is given explicitly; a
    failed start is retried once on new ports."""
    failures = []
    for _ in range(2):
        temp = tempfile.mkdtemp(prefix="grt", dir="/tmp")  # short: Ray's socket paths must be
        port, *ports = _free_ports(13)
        common = ["--num-cpus=1", "--disable-usage-stats"]
        head_temp, head_work = _node_folders(temp, "h")
        node_temp, node_work = _node_folders(temp, "n")
        head = _ray_start(["--head", f"--port={port}", "--include-dashboard=false",
                           f"--temp-dir={head_temp}", *_node_ports(ports[:6]), *common], env,
                          head_work)
        if head.returncode == 0:
            node = _ray_start([f"--address=127.0.0.1:{port}", f"--temp-dir={node_temp}",
                               *_node_ports(ports[6:]), *common], env, node_work)
            if node.returncode == 0:
                return f"127.0.0.1:{port}", temp, failures
            failures.append(_explain("second node", node))
        else:
            failures.append(_explain("head", head))
        _stop(temp)
    pytest.fail("could not start a two-node Ray cluster:\n" + "\n".join(failures))


def _node_ports(ports: list[int]) -> list[str]:
    """Explicit ports (six) for the processes of one node that otherwise take fixed defaults."""
    names = ("node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc",
             "runtime-env-agent", "metrics-export")
    return [f"--{name}-port={port}" for name, port in zip(names, ports)]


def cluster_env() -> dict:
    """Environment of the cluster's nodes and of its clients: token auth with a fresh token."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture
def two_node_cluster():
    env = cluster_env()
    address, temp, failures = _start_cluster(env)
    if failures:  # started on the second try: say why the first failed
        print("first start failed (retried on new ports):\n" + failures[0])
    try:
        yield address, env
    finally:
        _stop(temp)


def _results_in_bucket(bucket, prefix: str) -> list[list[dict]]:
    """The reports of each trial's result.json under ``prefix`` of the bucket."""
    import pyarrow.fs as pafs

    trials = []
    for info in bucket.get_file_info(pafs.FileSelector(prefix, recursive=True)):
        if info.base_name == "result.json":
            text = bucket.open_input_stream(info.path).read().decode()
            trials.append([json.loads(line) for line in text.splitlines() if line])
    return trials


def test_sweep_and_search_on_a_two_node_cluster_whose_only_storage_is_a_bucket(
        two_node_cluster, s3_server, tmp_path):
    """A sweep on both nodes, its driver killed mid-sweep and rerun to the results of an
    uninterrupted sweep, then a critical-ratio search: the bucket is the only storage."""
    import pandas as pd
    import pyarrow.fs as pafs

    from analysis import results
    from analysis.critical_ratio import load as load_search
    from conftest import TINY_TICKET, grok_command, grok_env
    from grok_core.store import join_location
    from servers import BUCKET, s3_uri

    address, env = two_node_cluster
    uri = s3_uri(s3_server.endpoint, "cluster")
    auth = {k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    bucket = pafs.S3FileSystem(endpoint_override=s3_server.endpoint, scheme="http")
    args = ["sweep", "pruning_rate", "--quick", *TINY_TICKET, "--set", "train.steps=1500",
            "--rates", "0.3,0.6,0.9", "--report-every", "250", "--max-cohort", "1",
            "--set", "base.train.steps=1500", "--set", "base.train.checkpoint_every=500",
            "--seeds", "0", "--address", address, "--storage", uri]
    reference = run_grok(*args, "--name", "reference", env=auth)
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert "every node must see" not in reference.stderr  # a bucket needs no shared folder
    trials = _results_in_bucket(bucket, f"{BUCKET}/cluster/reference")
    assert len(trials) == 3 and all(reports[-1]["done_training"] for reports in trials)
    assert len({report["node"] for reports in trials for report in reports}) == 2

    driver = subprocess.Popen(grok_command(*args, "--name", "pr"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True,
                              env=grok_env(auth))
    deadline = time.time() + 300
    while time.time() < deadline and driver.poll() is None and not any(
            info.base_name == "members.parquet" for info in bucket.get_file_info(
                pafs.FileSelector(f"{BUCKET}/cluster/pr", recursive=True,
                                  allow_not_found=True))):
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver (a client of the cluster) dies
    driver.wait()
    finished = {info.path.split("/")[3] for info in bucket.get_file_info(pafs.FileSelector(
        f"{BUCKET}/cluster/pr", recursive=True)) if info.base_name == "members.parquet"}
    assert 1 <= len(finished) < 3, finished  # killed mid-sweep
    resumed = run_grok(*args, "--name", "pr", env=auth)
    assert resumed.returncode == 0 and "resuming" in resumed.stderr, resumed.stderr[-3000:]
    columns = ["seed", "pruning_rate", "t_mem", "t_gen", "final_test_acc"]
    comparable = lambda name: results.load(join_location(uri, name)).members[  # noqa: E731
        columns].sort_values("pruning_rate").reset_index(drop=True)
    pd.testing.assert_frame_equal(comparable("pr"), comparable("reference"))

    study = f"sqlite:///{tmp_path / 'study.db'}"  # the driver's own: no node reads it
    search = run_grok("critical-ratio", "--quick", *TINY_TICKET, "--set", "train.steps=300",
                      "--set", "base.train.steps=1500", "--set", "base.train.checkpoint_every=500",
                      "--trials", "2", "--seeds", "0", "--address", address, "--storage", uri,
                      "--study-storage", study, env=auth)
    assert search.returncode == 0, search.stderr[-3000:]
    assert "in the store" in search.stderr  # the sweeps' dense run, read from the bucket
    assert load_search(join_location(uri, "critical_ratio_search-quick")).trials == 2
