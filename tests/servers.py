"""Real servers for the storage tests: an S3 API server (moto's server mode) and a throwaway
PostgreSQL, each started once per test session by the fixtures in ``conftest.py``; and a TCP
relay in front of the S3 server that a test can cut and restore (a storage outage that keeps
the bucket's contents, as a restarted MinIO or S3 endpoint would).

Nothing here is mocked: pyarrow, Ray Tune and Optuna talk to these servers over sockets.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
BUCKET = "grok"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


# --- S3 --------------------------------------------------------------------------------------
class S3Server:
    """``moto_server`` on a free port of 127.0.0.1, with the bucket ``grok`` created."""

    def __init__(self) -> None:
        self.port = free_port()
        command = os.path.join(os.path.dirname(sys.executable), "moto_server")
        self.process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        import pyarrow.fs as pafs

        pafs.S3FileSystem(endpoint_override=self.endpoint, scheme="http",
                          allow_bucket_creation=True).create_dir(BUCKET)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def s3_uri(endpoint: str, prefix: str) -> str:
    """``s3://grok/PREFIX`` with pyarrow's endpoint options in the query."""
    return f"s3://{BUCKET}/{prefix}?endpoint_override={endpoint}&scheme=http"


class Relay:
    """A TCP relay from a port of its own to ``target_port``: ``cut()`` closes it (new
    connections are refused, open ones dropped), ``restore()`` listens again on the same port.
    The server behind it, and what it stores, stay as they are."""

    def __init__(self, target_port: int) -> None:
        self.target_port, self.port = target_port, free_port()
        self._listener: Optional[socket.socket] = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._open = self._open, []
        if listener is not None:
            listener.close()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# --- PostgreSQL ------------------------------------------------------------------------------
def postgres_available() -> bool:
    return os.path.exists(os.path.join(POSTGRES_BIN, "initdb"))


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster on a free port (trust authentication, user ``grok``,
    database ``grok``), run as the ``postgres`` system user when this process is root (the
    server refuses to run as root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="grok-pg-")
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "grok")
        self._run("pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        self.data = data
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "grok", "grok")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, os.path.join(POSTGRES_BIN, tool), *args], check=True,
                       capture_output=True, timeout=120)

    def url(self, database: str = "grok", driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://grok@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, driver: str = "psycopg") -> str:
        """A new database ``name``; its SQLAlchemy URL with ``driver`` (psycopg: version 3)."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "grok", name)
        return self.url(name, driver)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
