"""The demo: several "services" open a realistic mix of connections, then dbconnmgr looks.

It runs, as a user would: status, health (Nagios exit codes), budget, close-idle as a dry
run and for real on the web service's idle sessions, and one monitor sample. Then a
throwaway PgBouncer in front of the server, with a client waiting: status and health show
its pools beside the server (skipped with one line when PgBouncer is missing and cannot be
installed, e.g. not root, or with ``DATABASE_URL``).

Run with ``scripts/demo``. Without ``DATABASE_URL`` a throwaway PostgreSQL server is started
(max_connections=40) and removed at the end; with it, the demo uses that server (the role
must be allowed to CREATE ROLE / CREATE DATABASE). ``DBCONNMGR_STACK=py312-dj6-mariadb
scripts/demo`` (or ``--mariadb``) runs the MariaDB part instead (devtools/demo_mariadb.py).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import conninfo

from devtools.pgbouncerserver import PgBouncerServer
from devtools.pgserver import PgServer, PgServerError, describe_bindir
from devtools.system_packages import MissingPackages

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo-password"

# (application_name, role, idle, active, idle in transaction, aborted)
SERVICES = [
    ("shop-web", "shop_web", 9, 2, 0, 0),
    ("celery-worker", "shop_worker", 5, 1, 1, 0),
    ("cron-nightly-report", "shop_report", 0, 1, 0, 1),
    ("psql", "postgres", 1, 0, 0, 0),
]


@contextlib.contextmanager
def server() -> Iterator[tuple[str, PgServer | None]]:
    """Yield a superuser DATABASE_URL and the throwaway server (None with $DATABASE_URL)."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"], None
        return
    pg = PgServer(max_connections=40)
    print(f"Starting a throwaway server: {describe_bindir(pg.bindir)}", flush=True)
    pg.start()
    try:
        yield pg.url, pg
    finally:
        pg.stop()


def with_user(url: str, user: str, dbname: str) -> str:
    """The same server as ``url`` for another user and database."""
    info = conninfo.conninfo_to_dict(url)
    password = info["password"] if user == info.get("user") else PASSWORD
    return conninfo.make_conninfo(url, user=user, password=password, dbname=dbname)


class Services:
    """Holds the services' sessions open in their states until close()."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conns: list[psycopg.Connection] = []
        self.threads: list[threading.Thread] = []

    def setup(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as admin:
            for role in {r for _, r, *_ in SERVICES if r != "postgres"}:
                admin.execute(f"DROP ROLE IF EXISTS {role}")  # leftovers of an earlier run
                admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = 'shop'").fetchone()
            if not exists:
                admin.execute("CREATE DATABASE shop")
        with psycopg.connect(with_user(self.url, "postgres", "shop"), autocommit=True) as shop:
            shop.execute("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, total int)")
            shop.execute("INSERT INTO orders VALUES (1, 10) ON CONFLICT DO NOTHING")
            shop.execute("GRANT ALL ON orders TO shop_web, shop_worker, shop_report")

    def open(self, app: str, role: str, state: str) -> psycopg.Connection:
        dsn = self.url if role == "postgres" else with_user(self.url, role, "shop")
        conn = psycopg.connect(dsn, application_name=app, autocommit=state in ("idle", "active"))
        self.conns.append(conn)
        if state == "idle":
            conn.execute("SELECT 1")
        elif state == "idle in transaction":
            conn.execute("SELECT total FROM orders WHERE id = 1 FOR UPDATE")
        elif state == "aborted":
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT 1/0")
        elif state == "active":
            self._background(conn, "SELECT pg_sleep(600)")
        return conn

    def _background(self, conn: psycopg.Connection, sql: str) -> None:
        def run() -> None:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> None:
        for app, role, idle, active, in_txn, aborted in SERVICES:
            counts = {"idle": idle, "active": active, "idle in transaction": in_txn,
                      "aborted": aborted}  # fmt: skip
            for state, count in counts.items():
                for _ in range(count):
                    self.open(app, role, state)
        # A web request waits for the row the worker's open transaction has locked.
        waiter = psycopg.connect(
            with_user(self.url, "shop_web", "shop"), application_name="shop-web", autocommit=True
        )
        self.conns.append(waiter)
        self._background(waiter, "UPDATE orders SET total = total + 1 WHERE id = 1")

    def close(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND application_name = ANY(%s)",
                ([s[0] for s in SERVICES if s[0] != "psql"],),
            )
        for conn in self.conns:
            conn.close()
        for thread in self.threads:
            thread.join(5)


#: What an exit code tells a script or a monitoring system (docs/index.md's table).
EXIT_MEANING = {
    0: "ok",
    1: "warning / over budget / partly done",
    2: "critical",
    3: "unknown or usage error",
}
#: (part, command line, exit code) of every step run, for the summary at the end.
SUMMARY: list[tuple[str, str, int]] = []


def manage(
    url: str, *args: str, shows: str, part: str = "server",
    extra_env: dict[str, str] | None = None,
) -> int:  # fmt: skip
    """Run manage.py as a user would: what it shows, the command line, then its exit code."""
    line = f"python manage.py {shlex.join(args)}"
    print(f"\n--- {shows}\n$ {line}", flush=True)
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="example_project.settings")
    env.update(extra_env or {})
    code = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env).returncode
    print(f"[exit {code}: {EXIT_MEANING.get(code, 'error')}: what a script would see]", flush=True)
    SUMMARY.append((part, line, code))
    return code


def print_summary() -> None:
    """One line per step: the exit code and what it means."""
    print("\n=== Summary: every step and the exit code a script would see", flush=True)
    for part, line, code in SUMMARY:
        print(f"  [{part}] exit {code} ({EXIT_MEANING.get(code, 'error')}): {line}")


def main() -> int:
    """Run the demo; returns the exit code (a server that cannot start: one line, 1)."""
    try:
        return run()
    except PgServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


#: PgBouncer's pool in the demo: two server connections, so a third client waits.
DEMO_POOL_SIZE = 2


def pgbouncer_part(pg: PgServer | None) -> None:
    """A throwaway PgBouncer (transaction mode) in front of the demo's server: two clients
    hold a transaction (so both server connections), a third waits; status and health then
    show PgBouncer's pools beside the server. Skipped with one line when it cannot run."""
    if pg is None:
        print(
            "\nPgBouncer part skipped: it needs the demo's throwaway server (DATABASE_URL is set)"
        )
        return
    try:
        bouncer = PgBouncerServer(pg, pool_mode="transaction", default_pool_size=DEMO_POOL_SIZE)
    except MissingPackages as exc:
        print(f"\nPgBouncer part skipped: {exc}", flush=True)
        return
    with bouncer.start():
        print(
            f"\nPgBouncer on 127.0.0.1:{bouncer.port} in transaction mode (pool of "
            f"{DEMO_POOL_SIZE} server connections) in front of the server: 2 shop-web clients "
            "hold a transaction, 1 celery-worker client waits for a server connection.",
            flush=True,
        )
        holders = [
            psycopg.connect(bouncer.url(), application_name="shop-web", prepare_threshold=None)
            for _ in range(DEMO_POOL_SIZE)
        ]
        waiter = psycopg.connect(
            bouncer.url(), application_name="celery-worker", autocommit=True,
            prepare_threshold=None,
        )  # fmt: skip
        waiting = threading.Thread(target=lambda: waiter.execute("SELECT 1"), daemon=True)
        try:
            for conn in holders:
                conn.execute("SELECT 1")  # a transaction stays open: its server connection too
            waiting.start()
            time.sleep(1.5)  # the waiter's maxwait grows past the 1 s warning
            env = {
                "DB_PGBOUNCER": "transaction",
                "DBCONNMGR_PGBOUNCER_CONSOLE": bouncer.console_url(),
                "DBCONNMGR_PGBOUNCER_SERVER": pg.url,
            }
            manage(
                bouncer.url(), "db_connections", "--action=status", "--limit=3",
                shows="PgBouncer's pools (clients active and waiting, servers) beside the "
                "server's own connections",
                part="pgbouncer", extra_env=env,
            )  # fmt: skip
            manage(
                bouncer.url(), "db_connections", "--action=health",
                shows="health with PgBouncer's checks: the waiting client and its maxwait "
                "are findings (a warning or critical exit, on purpose)",
                part="pgbouncer", extra_env=env,
            )  # fmt: skip
        finally:
            for conn in holders:
                conn.rollback()  # frees a server connection: the waiter gets it
            waiting.join(10)
            for conn in (*holders, waiter):
                conn.close()


def run() -> int:
    """The demo itself."""
    with server() as (url, pg):
        services = Services(url)
        services.setup()
        try:
            services.start()
            print(
                "Services connected: shop-web (9 idle, 2 active, 1 waiting on a lock), "
                "celery-worker (5 idle, 1 active, 1 idle in transaction holding a row lock), "
                "cron-nightly-report (1 long query, 1 aborted transaction), psql (1 idle).",
                flush=True,
            )
            time.sleep(2)  # let ages grow so the oldest transaction is visible
            django_url = urlsplit(url)._replace(path="/shop").geturl()
            code = manage(
                django_url, "db_connections", "--action=status", "--limit=5",
                shows="status: every client connection by state, application, user and "
                "database, counted the way the server counts its slots",
            )  # fmt: skip
            # health exits 1/2 on purpose here (the demo's server is busy): not a failure.
            manage(
                django_url, "db_connections", "--action=health",
                shows="health: the lock wait, the transaction idle while holding a lock and "
                "the aborted one are findings, so the exit code is not 0 (on purpose)",
            )  # fmt: skip
            manage(
                django_url, "db_connections", "--action=budget",
                "--service=web=2x4x8:10", "--service=worker=1x2x4:4",
                shows="budget: what two services' pools may open against the server's 40 "
                "slots, and the largest safe pool per process",
            )  # fmt: skip
            for extra, shows in (
                (
                    "--dry-run",
                    "close-idle --dry-run: which of shop-web's idle sessions would "
                    "be terminated, changing nothing",
                ),
                (
                    "--noinput",
                    "close-idle for real: the same sessions terminated, each "
                    "re-checked by the server first; an audit line per session",
                ),
            ):
                manage(
                    django_url, "db_connections", "--action=close-idle", "--idle-for=1",
                    "--application=shop-web", extra, shows=shows,
                )  # fmt: skip
            manage(
                django_url, "db_connections", "--action=monitor", "--format=json",
                shows="monitor: one sample as a JSON line, with the average active sessions "
                "(--watch keeps sampling: the live view)",
            )  # fmt: skip
        finally:
            services.close()
        pgbouncer_part(pg)
    print_summary()
    return code


if __name__ == "__main__":
    if "--mariadb" in sys.argv[1:] or os.environ.get("DBCONNMGR_DB") == "mariadb":
        from devtools.demo_mariadb import main as mariadb_main

        sys.exit(mariadb_main())
    sys.exit(main())
