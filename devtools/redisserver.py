"""A throwaway Redis server for tests: random free port, own directory, no persistence.

``redis-server`` comes from Debian's ``redis-server`` package, installed when missing (as
root) by :func:`devtools.system_packages.ensure_debian_packages`, which otherwise raises
with the exact ``apt-get`` command.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.pgserver import end_process, free_port
from devtools.system_packages import ensure_debian_packages, find_binary

__all__ = ["RedisServer"]


class RedisServer:
    """One ``redis-server`` on 127.0.0.1; :meth:`start`, then :attr:`url`, then :meth:`stop`."""

    def __init__(self) -> None:
        self.port = 0
        self.root: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it accepts connections."""
        ensure_debian_packages({"redis-server": "redis-server"})
        binary = find_binary("redis-server")
        assert binary is not None
        self.root = Path(tempfile.mkdtemp(prefix="dbconnmgr-redis-"))
        self.port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        end_process(self.process)
        self.process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
