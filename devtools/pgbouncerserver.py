"""A throwaway PgBouncer in front of a throwaway PostgreSQL, for the tests, the demo and CI.

PgBouncer (Debian's ``pgbouncer``, 1.18+) is installed when missing through
:func:`devtools.system_packages.ensure_debian_packages`. Each instance gets its own
directory (ini, userlist, log, Unix socket), a random free port on 127.0.0.1, and is
stopped and removed by :meth:`PgBouncerServer.stop` (also registered with :mod:`atexit`).
PgBouncer refuses to run as root: as root it runs as the ``postgres`` system user, like
:class:`devtools.pgserver.PgServer`.

Roles in the userlist (plain-text passwords, SCRAM towards clients and the server):

- ``postgres``: the upstream server's superuser, to reach real databases through the pooler;
- ``pgb_stats``: in ``stats_users`` (read-only console: SHOW ...);
- ``pgb_admin``: in ``admin_users`` (the whole console);
- ``pgb_nobody``: known to PgBouncer but in neither list (the console refuses it).

Usage::

    server = PgServer(max_connections=50).start()
    bouncer = PgBouncerServer(server, pool_mode="transaction", default_pool_size=5).start()
    bouncer.url()          # postgres://postgres:...@127.0.0.1:PORT/postgres (pooled)
    bouncer.console_url()  # postgres://pgb_stats:...@127.0.0.1:PORT/pgbouncer
    bouncer.stop()

``python -m devtools.pgbouncerserver`` starts both and prints their URLs until interrupted.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from devtools.pgserver import PgServer, PgServerError, end_process, free_port
from devtools.system_packages import ensure_debian_packages, find_binary

__all__ = ["PgBouncerServer", "ensure_pgbouncer"]

#: Roles of the console: ``stats_users`` and ``admin_users``, and one in neither.
STATS_USER = "pgb_stats"
ADMIN_USER = "pgb_admin"
NOBODY_USER = "pgb_nobody"


def ensure_pgbouncer() -> str:
    """The path of the ``pgbouncer`` binary, installing Debian's package when missing."""
    ensure_debian_packages({"pgbouncer": "pgbouncer"})
    path = find_binary("pgbouncer")
    if path is None:  # pragma: no cover - ensure_debian_packages raised already
        raise PgServerError("pgbouncer is not installed")
    return path


class PgBouncerServer:
    """One throwaway PgBouncer in front of ``upstream``.

    Args:
        upstream: the PostgreSQL server to pool (started).
        pool_mode: ``session``, ``transaction`` or ``statement``.
        **settings: more ``[pgbouncer]`` settings (``default_pool_size=5``,
            ``max_db_connections=8``...).
    """

    def __init__(
        self, upstream: PgServer, *, pool_mode: str = "transaction", **settings: object
    ) -> None:
        self.upstream = upstream
        self.binary = ensure_pgbouncer()
        self.passwords = {
            "postgres": upstream.password,
            STATS_USER: secrets.token_hex(8),
            ADMIN_USER: secrets.token_hex(8),
            NOBODY_USER: secrets.token_hex(8),
        }
        self.settings: dict[str, object] = {
            "pool_mode": pool_mode,
            "default_pool_size": 5,
            "reserve_pool_size": 0,
            "max_client_conn": 500,
            "server_login_retry": 1,
            # Django and psycopg may send these; PgBouncer would refuse the client otherwise.
            "ignore_startup_parameters": "extra_float_digits,options",
        }
        self.settings.update(settings)
        self.port = 0
        self.root: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres = os.geteuid() == 0

    # -- URLs --------------------------------------------------------------------------------
    def url(self, user: str = "postgres", dbname: str = "postgres") -> str:
        """A URL through the pooler to a real database."""
        return f"postgres://{user}:{self.passwords[user]}@127.0.0.1:{self.port}/{dbname}"

    def console_url(self, user: str = STATS_USER) -> str:
        """The admin console's URL (database ``pgbouncer``) as ``user``."""
        return self.url(user, "pgbouncer")

    # -- lifecycle ---------------------------------------------------------------------------
    def _write_config(self) -> Path:
        assert self.root is not None
        userlist = "".join(f'"{user}" "{pw}"\n' for user, pw in self.passwords.items())
        (self.root / "userlist.txt").write_text(userlist)
        lines = [
            "[databases]",
            f"* = host=127.0.0.1 port={self.upstream.port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            f"unix_socket_dir = {self.root}",
            "auth_type = scram-sha-256",
            f"auth_file = {self.root / 'userlist.txt'}",
            f"admin_users = {ADMIN_USER}",
            f"stats_users = {STATS_USER}",
            f"logfile = {self.root / 'pgbouncer.log'}",
            f"pidfile = {self.root / 'pgbouncer.pid'}",
            *(f"{key} = {value}" for key, value in self.settings.items()),
        ]
        ini = self.root / "pgbouncer.ini"
        ini.write_text("\n".join(lines) + "\n")
        return ini

    def start(self, timeout: float = 15) -> PgBouncerServer:
        """Write the config, start PgBouncer, wait until it accepts connections."""
        self.root = Path(tempfile.mkdtemp(prefix="dbconnmgr-pgbouncer-"))
        os.chmod(self.root, 0o755)
        atexit.register(self.stop)
        for _attempt in range(5):
            self.port = free_port()
            ini = self._write_config()
            if self._as_postgres:
                for path in (self.root, *self.root.iterdir()):
                    shutil.chown(path, "postgres")
            command = [self.binary, str(ini)]
            if self._as_postgres:
                command = ["runuser", "-u", "postgres", "--", *command]
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if self._wait_ready(timeout):
                return self
            self._kill()
        raise PgServerError(f"PgBouncer did not start: {self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # exited: the port was taken, or a bad setting
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 20) -> str:
        """The end of PgBouncer's log, for error messages."""
        log = self.root / "pgbouncer.log" if self.root is not None else None
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _kill(self) -> None:
        # runuser forwards SIGTERM; PgBouncer exits at once on SIGTERM (1.18: SIGINT waits)
        end_process(self.process)
        self.process = None

    def stop(self) -> None:
        """Stop PgBouncer and remove its directory. Safe to call twice."""
        self._kill()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PgBouncerServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Start a PostgreSQL and a PgBouncer in front of it; print their URLs until interrupted."""
    server = PgServer(max_connections=50).start()
    bouncer = PgBouncerServer(server).start()
    # example_project's variables (docs/pgbouncer.md): paste them before manage.py
    print(f"DATABASE_URL={bouncer.url()}", flush=True)
    print("DB_PGBOUNCER=transaction", flush=True)
    print(f"DBCONNMGR_PGBOUNCER_CONSOLE={bouncer.console_url()}", flush=True)
    print(f"DBCONNMGR_PGBOUNCER_SERVER={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        bouncer.stop()
        server.stop()


if __name__ == "__main__":
    main()
