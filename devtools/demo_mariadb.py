"""The MariaDB part of the demo: services' sessions on a throwaway MariaDB, then dbconnmgr.

Run with ``DBCONNMGR_STACK=py312-dj6-mariadb scripts/demo`` (or ``python -m devtools.demo
--mariadb`` in that stack's virtualenv). A MariaDB server (max_connections 20, so 21 slots
with the admin's) is started and removed at the end; accounts ``shop_web`` and
``shop_worker`` hold idle, active and in-transaction sessions, one attempt is refused for a
wrong password, and the demo runs status, health, two monitor samples (refused connections
since the last sample), budget (one connection per thread: Django has no MySQL pool) and
close-idle (dry run, then for real) of the web account's idle sessions.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import MySQLdb

from devtools.demo import manage, print_summary
from devtools.mariadbserver import MariaDBServer

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo-password"

# (account, idle, active, idle in transaction)
SERVICES = [("shop_web", 6, 1, 0), ("shop_worker", 3, 1, 1)]


def _sessions(server: MariaDBServer) -> tuple[list[Any], list[threading.Thread]]:
    conns: list[Any] = []
    threads: list[threading.Thread] = []
    for account, idle, active, in_txn in SERVICES:
        kwargs = server.connect_kwargs(account, PASSWORD, "shop")
        for _ in range(idle):
            conn = MySQLdb.connect(**kwargs)
            conn.autocommit(True)
            conn.cursor().execute("SELECT 1")
            conns.append(conn)
        for _ in range(in_txn):
            conn = MySQLdb.connect(**kwargs)
            cursor = conn.cursor()
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT total FROM orders WHERE id = 1 FOR UPDATE")
            conns.append(conn)
        for _ in range(active):
            conn = MySQLdb.connect(**kwargs)
            conns.append(conn)

            def run(c: Any = conn) -> None:
                with contextlib.suppress(MySQLdb.Error):
                    c.cursor().execute("SELECT SLEEP(600)")

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            threads.append(thread)
    with contextlib.suppress(MySQLdb.OperationalError):  # counted in Aborted_connects
        MySQLdb.connect(**server.connect_kwargs("shop_web", "wrong-password", "shop"))
    return conns, threads


def main() -> int:
    """Run the MariaDB demo; returns the exit code of ``status``."""
    print("Starting a throwaway MariaDB server (max_connections=20)...", flush=True)
    server = MariaDBServer(max_connections=20).start()
    conns: list[Any] = []
    try:
        accounts = "".join(
            f"CREATE USER '{account}'@'%' IDENTIFIED BY '{PASSWORD}'; "
            f"GRANT ALL ON shop.* TO '{account}'@'%';"
            for account, *_ in SERVICES
        )
        schema = (
            "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, total INT) "
            "ENGINE=InnoDB; INSERT INTO shop.orders VALUES (1, 10);"
        )
        server.sql(schema + accounts)
        conns, _threads = _sessions(server)
        print(
            "Services connected: shop_web (6 idle, 1 active), shop_worker (3 idle, 1 active, "
            "1 idle in transaction holding a row lock); one login refused (wrong password).",
            flush=True,
        )
        time.sleep(2)
        url = server.url_for("admin", server.password, "shop")
        code = manage(
            url, "db_connections", "--action=status", "--limit=5", part="mariadb",
            shows="status: MariaDB's threads mapped to the common states (Sleep = idle, with "
            "an open InnoDB transaction = idle in transaction)",
        )  # fmt: skip
        manage(
            url, "db_connections", "--action=health", part="mariadb",
            shows="health: the transaction idle while holding a row lock and the refused "
            "login are findings, so the exit code is not 0 (on purpose)",
        )  # fmt: skip
        manage(
            url, "db_connections", "--action=monitor", "--count=2", "--interval=1",
            "--format=json", part="mariadb",
            shows="monitor: two samples as JSON lines, refused connections since the last",
        )  # fmt: skip
        manage(
            url, "db_connections", "--action=budget", "--service=web=2x8:persistent",
            "--service=worker=2x2:persistent", part="mariadb",
            shows="budget: one connection per thread (Django has no MySQL pool) against "
            "the server's 20 slots",
        )  # fmt: skip
        for extra, shows in (
            (
                "--dry-run",
                "close-idle --dry-run: which of shop_web's idle threads would be "
                "killed, changing nothing",
            ),
            ("--noinput", "close-idle for real: KILL CONNECTION after a re-check of each"),
        ):
            manage(
                url, "db_connections", "--action=close-idle", "--idle-for=1",
                "--user=shop_web", extra, part="mariadb", shows=shows,
            )  # fmt: skip
        print_summary()
        return code
    finally:
        for conn in conns:
            with contextlib.suppress(MySQLdb.Error):
                conn.close()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
