"""Ray for sweeps: joining a cluster (or starting a local embedded Ray), what it holds, and
whether a trial of the requested size fits anywhere. Shared by every launcher in ``sweeps``.

Ray is imported inside each function: importing it costs about a second, and a command checks
the user's input (an unreachable address included, by a plain socket) before any of these runs.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Optional

from grok_core.config import ConfigError


def check_reachable(address: str) -> None:
    """ConfigError unless something listens at HOST:PORT (checked before ray.init waits)."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--address: expected HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray cluster reachable ({exc.strerror or exc})"
                          ) from None


# How `grok` starts a local Ray where no cluster is named: embedded, no dashboard, and Ray's own
# logging kept to errors (trial output goes to each trial's folder, not the driver's terminal).
LOCAL_RAY_OPTIONS = {"include_dashboard": False, "log_to_driver": False,
                     "logging_level": logging.ERROR}


def start_local_ray() -> None:
    """Start the local embedded Ray a sweep uses when no cluster is named."""
    import ray

    ray.init(**LOCAL_RAY_OPTIONS)


def connect_ray(address: Optional[str]) -> None:
    """Join the cluster at ``address`` (or RAY_ADDRESS), else start a local embedded Ray.

    Where this process is connected already (a second sweep from one Python session, or a
    test session's shared Ray) that Ray is used, but a named address is checked first: an
    unreachable one is refused as on a fresh start, and one that names another cluster than
    the connected one is refused rather than silently running on the wrong cluster."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address)
    if ray.is_initialized():
        _check_connected_to(address)
        return
    if address:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except Exception as exc:  # Ray raises many kinds here; the user needs one line
            raise ConfigError(f"--address {address}: could not join the Ray cluster: "
                              f"{_first_line(exc)}{_auth_hint(exc)}") from None
    else:
        start_local_ray()


def _check_connected_to(address: Optional[str]) -> None:
    """ConfigError if ``address`` (HOST:PORT) is not the port of the Ray this process is
    connected to (hosts are not compared: one node has several names and addresses)."""
    if not address or address in ("auto", "local") or address.startswith("ray://"):
        return
    import ray

    connected = ray.get_runtime_context().gcs_address
    if address.rpartition(":")[2] != connected.rpartition(":")[2]:
        raise ConfigError(f"--address {address}: this process is already connected to the Ray "
                          f"cluster at {connected}; run grok in a new process to use another")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _auth_hint(exc: BaseException) -> str:
    if "token" not in str(exc).lower() and "auth" not in type(exc).__name__.lower():
        return ""
    return (" (clusters with token authentication need RAY_AUTH_MODE=token and the cluster's "
            "token in RAY_AUTH_TOKEN or ~/.ray/auth_token)")


def alive_nodes() -> list[dict]:
    """The cluster's live nodes (``ray.nodes()`` entries)."""
    import ray

    return [node for node in ray.nodes() if node.get("Alive")]


def cluster_cpus() -> float:
    """CPUs the cluster offers in all."""
    import ray

    return float(ray.cluster_resources().get("CPU", 1))


def check_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """ConfigError if no node could ever hold one trial (instead of a trial pending forever)."""
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise ConfigError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
    nodes = alive_nodes()
    fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= cpus_per_trial
            and n["Resources"].get("GPU", 0) >= gpus_per_trial]
    if not fits:
        total_gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        what = (f"{gpus_per_trial} GPU(s) per trial, the cluster has {total_gpus:g} GPU(s)"
                if gpus_per_trial > total_gpus or total_gpus == 0 and gpus_per_trial > 0
                else f"{cpus_per_trial} CPU(s) per trial on one node")
        raise ConfigError(f"no node can run a trial: {what}")




def trial_slots(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials of this size the cluster runs at once."""
    import ray

    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 1) // cpus_per_trial)
    if gpus_per_trial > 0:
        slots = min(slots, int(resources.get("GPU", 0) // gpus_per_trial))
    return max(1, slots)
