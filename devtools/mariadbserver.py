"""A throwaway MariaDB server for the tests, the demo and the benchmarks.

Like :mod:`devtools.pgserver`: its own data directory, a random free port on 127.0.0.1, an
administrator with a random password over TCP, stopped and removed by
:meth:`MariaDBServer.stop` (also registered with :mod:`atexit`). As root the server runs as
the ``mysql`` system user (created when missing). Debian's ``mariadb-server`` is installed
when missing (:mod:`devtools.system_packages`: apt-get as root, the exact command otherwise).

Usage::

    server = MariaDBServer(max_connections=20).start()
    print(server.url)          # mysql://admin:...@127.0.0.1:PORT/dbconnmgr
    server.sql("CREATE USER ...")
    server.stop()

``python -m devtools.mariadbserver`` starts one and prints ``DATABASE_URL=...`` until
interrupted.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.pgserver import end_process, free_port, serve_until_interrupted
from devtools.system_packages import ensure_debian_packages, find_binary

#: Binaries the server needs -> the Debian package that carries them.
PACKAGES = {"mariadbd": "mariadb-server", "mariadb-install-db": "mariadb-server"}

#: The database the administrator's URL names (created at start).
DATABASE = "dbconnmgr"
ADMIN = "admin"


class MariaDBServerError(RuntimeError):
    """The throwaway server could not be created or started."""


class MariaDBServer:
    """One throwaway MariaDB instance.

    Args:
        password: the ``admin`` account's password (random by default).
        **settings: server options passed as ``--name=value`` (``max_connections=20``...).
    """

    def __init__(self, *, password: str | None = None, **settings: object) -> None:
        self.password = password or secrets.token_hex(12)
        self.settings: dict[str, object] = {
            "max_connections": 100,
            "innodb_buffer_pool_size": "32M",
            "innodb_log_file_size": "16M",
            "innodb_flush_log_at_trx_commit": 0,
            "skip_name_resolve": 1,
            "open_files_limit": 8192,
            "thread_cache_size": 64,
        }
        self.settings.update(settings)
        self.port = 0
        self.root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_mysql = os.geteuid() == 0

    # -- paths -------------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket(self) -> Path:
        assert self.root is not None
        return self.root / "mysqld.sock"

    @property
    def url(self) -> str:
        """The administrator's connection URL (TCP, password)."""
        return self.url_for(ADMIN, self.password)

    def url_for(self, user: str, password: str, dbname: str = DATABASE) -> str:
        """A ``mysql://`` URL for another account of this server."""
        return f"mysql://{user}:{password}@127.0.0.1:{self.port}/{dbname}"

    def connect_kwargs(
        self, user: str = ADMIN, password: str | None = None, dbname: str = DATABASE
    ) -> dict[str, object]:
        """Keyword arguments for ``MySQLdb.connect``."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": user,
            "password": self.password if password is None else password,
            "database": dbname,
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> MariaDBServer:
        """Install the packages if needed, create the data directory, start, wait. Returns
        self."""
        ensure_debian_packages(PACKAGES)
        if self._as_mysql:
            try:
                pwd.getpwnam("mysql")
            except KeyError:
                subprocess.run(["useradd", "--system", "mysql"], check=True)
        self.root = Path(tempfile.mkdtemp(prefix="dbconnmgr-mariadb-"))
        os.chmod(self.root, 0o755)
        if self._as_mysql:
            shutil.chown(self.root, "mysql")
        atexit.register(self.stop)
        init = subprocess.run(
            [
                _binary("mariadb-install-db"),
                "--no-defaults",
                f"--user={self._user()}",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if init.returncode != 0:
            raise MariaDBServerError(
                f"mariadb-install-db failed: {init.stderr.strip()[-800:] or init.stdout[-800:]}"
            )
        for _attempt in range(5):
            self.port = free_port()
            if self._launch():
                self._bootstrap()
                return self
        raise MariaDBServerError(f"MariaDB did not start: {self.log_tail()}")

    def _user(self) -> str:
        return "mysql" if self._as_mysql else pwd.getpwuid(os.geteuid()).pw_name

    def _launch(self, timeout: float = 60) -> bool:
        assert self.root is not None
        options = [f"--{k.replace('_', '-')}={v}" for k, v in self.settings.items()]
        log = open(self.root / "error.log", "ab")  # noqa: SIM115 - the server keeps it
        self._proc = subprocess.Popen(
            [
                _binary("mariadbd"),
                "--no-defaults",
                f"--user={self._user()}",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--pid-file={self.root / 'mysqld.pid'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                *options,
            ],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                return False  # port taken, bad option...: see log_tail()
            if self.socket.exists() and self._client("SELECT 1").returncode == 0:
                return True
            time.sleep(0.05)
        self._kill()
        return False

    def _client(self, sql: str, *, user: str = "root") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_binary("mariadb"), "--no-defaults", f"--socket={self.socket}", f"--user={user}",
             "--batch", "--skip-column-names", "-e", sql],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip

    def sql(self, sql: str) -> str:
        """Run ``sql`` as root over the Unix socket (the ``mariadb`` client); return its
        output. Raises :class:`MariaDBServerError` on failure."""
        result = self._client(sql)
        if result.returncode != 0:
            raise MariaDBServerError(f"{sql[:80]!r} failed: {result.stderr.strip()}")
        return result.stdout

    def _bootstrap(self) -> None:
        pw = self.password.replace("'", "''")
        self.sql(
            f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4; "
            f"CREATE USER IF NOT EXISTS '{ADMIN}'@'%' IDENTIFIED BY '{pw}'; "
            f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN}'@'%' WITH GRANT OPTION;"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's error log, for error messages."""
        log = self.root / "error.log" if self.root is not None else None
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        end_process(proc, timeout=30)  # SIGTERM: a clean, quick shutdown

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call twice."""
        self._kill()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> MariaDBServer:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _binary(name: str) -> str:
    found = find_binary(name)
    if found is None:
        raise MariaDBServerError(f"{name} not found (Debian package mariadb-server)")
    return found


_session_server: MariaDBServer | None = None


def session_server(**settings: object) -> MariaDBServer:
    """One server per process (started on first call, removed at exit)."""
    global _session_server
    if _session_server is None:
        _session_server = MariaDBServer(**{"max_connections": 1100, **settings})  # type: ignore[arg-type]
        _session_server.start()
    return _session_server


def main() -> None:
    """Start a server and print its DATABASE_URL until interrupted."""
    serve_until_interrupted(MariaDBServer().start())


if __name__ == "__main__":
    main()
