"""A two-node Ray cluster on this machine: `grok sweep --address` runs trials on both nodes.

The test starts a head node and a second node with `ray start` (token authentication, as Ray
2.60 has it by default), in a temp dir of its own, and stops only the processes under that dir.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import run_grok


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def _stop(marker: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _processes_under(marker):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        time.sleep(2)


def _ray_start(args: list[str], env: dict) -> subprocess.CompletedProcess:
    ray = os.path.join(os.path.dirname(sys.executable), "ray")
    return subprocess.run([ray, "start", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def _explain(what: str, result: subprocess.CompletedProcess) -> str:
    return (f"`ray start` ({what}) exited {result.returncode}\n--- stdout ---\n"
            f"{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}")


def _start_cluster(env: dict) -> tuple[str, str, list[str]]:
    """(address, temp dir, failures): a head and a second node, each with one CPU, on fresh
    ports. Ray's fixed default ports (client server 10001, dashboard agent 52365, ...) may still
    be held by the Ray of an earlier test shutting down on a loaded machine, so every port is
    given explicitly; a failed start is retried once on new ports."""
    failures = []
    for _ in range(2):
        temp = tempfile.mkdtemp(prefix="grt", dir="/tmp")  # short: Ray's socket paths must be
        port = _free_port()
        common = ["--num-cpus=1", f"--temp-dir={temp}", "--disable-usage-stats"]
        head = _ray_start(["--head", f"--port={port}", "--include-dashboard=false",
                           f"--ray-client-server-port={_free_port()}", *_node_ports(), *common],
                          env)
        if head.returncode == 0:
            node = _ray_start([f"--address=127.0.0.1:{port}", *_node_ports(), *common], env)
            if node.returncode == 0:
                return f"127.0.0.1:{port}", temp, failures
            failures.append(_explain("second node", node))
        else:
            failures.append(_explain("head", head))
        _stop(temp)
    pytest.fail("could not start a two-node Ray cluster:\n" + "\n".join(failures))


def _node_ports() -> list[str]:
    """Explicit free ports for the processes of one node that otherwise take fixed defaults."""
    return [f"--node-manager-port={_free_port()}", f"--object-manager-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}"]


@pytest.fixture
def two_node_cluster():
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    address, temp, failures = _start_cluster(env)
    if failures:  # started on the second try: say why the first failed
        print("first start failed (retried on new ports):\n" + failures[0])
    try:
        yield address
    finally:
        _stop(temp)


def test_sweep_on_a_two_node_cluster_uses_both_nodes(two_node_cluster, tmp_path):
    storage = tmp_path / "shared"  # both nodes are on this machine: local storage is shared
    # trials long enough (seconds) that the two run side by side, one per single-CPU node
    result = run_grok("sweep", "lr_wd", "--quick", "--set", "train.steps=2000",
                      "--address", two_node_cluster, "--storage", storage,
                      env={"RAY_AUTH_MODE": "token"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: 2 nodes share the sweep: every node must see" in result.stderr
    nodes = set()
    for result_file in (storage / "lr_wd-quick").glob("*/result.json"):
        nodes |= {json.loads(line)["node"] for line in result_file.read_text().splitlines() if line}
    assert len(list((storage / "lr_wd-quick").glob("*/result.json"))) == 4
    assert len(nodes) == 2
