"""A two-node Ray cluster on this machine: `grok sweep --address` runs trials on both nodes.

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


def _ray_start(args: list[str], env: dict) -> subprocess.CompletedProcess:
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    return subprocess.run([ray, "start", *args], env=env, capture_output=True, text=True,
                          timeout=180)


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
        common = ["--num-cpus=1", f"--temp-dir={temp}", "--disable-usage-stats"]
        head = _ray_start(["--head", f"--port={port}", "--include-dashboard=false",
                           *_node_ports(ports[:6]), *common], env)
        if head.returncode == 0:
            node = _ray_start([f"--address=127.0.0.1:{port}", *_node_ports(ports[6:]), *common],
                              env)
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


def test_sweep_on_a_two_node_cluster_uses_both_nodes(two_node_cluster, tmp_path):
    address, env = two_node_cluster
    storage = tmp_path / "shared"  # both nodes are on this machine: local storage is shared
    # trials long enough (seconds) that the two run side by side, one per single-CPU node
    result = run_grok("sweep", "lr_wd", "--quick", *TINY, "--set", "train.steps=2000",
                      "--address", address, "--storage", storage,
                      env={k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: 2 nodes share the sweep: every node must see" in result.stderr
    nodes = set()
    for result_file in (storage / "lr_wd-quick").glob("*/result.json"):
        nodes |= {json.loads(line)["node"] for line in result_file.read_text().splitlines() if line}
    # TINY fixes optim.lr: the quick grid's two weight decays remain
    assert len(list((storage / "lr_wd-quick").glob("*/result.json"))) == 2
    assert len(nodes) == 2
