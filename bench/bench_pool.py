"""Cost of the per-process figures and the connector gate, beside Django's own backend.

Three aliases on one server, one pool each (same sizes), measured in alternation:
``django`` (Django's ENGINE, dbconnmgr's ``connection_created`` receiver disconnected: the
baseline), ``django+signal`` (Django's ENGINE with the receiver, connected when an unpooled
alias uses another ENGINE) and ``dbconnmgr`` (``dbconnmgr.db.postgresql``: gate and
counters, no receiver).
A checkout is ``ensure_connection()`` + ``close()`` (pool getconn + putconn); a query is
``cursor.execute("SELECT 1")`` on a held connection. The clock is the calling thread's
CPU time: the cost is CPU, and wall time on a shared machine is mostly other processes.
Targets: checkout overhead <= 5 us, per-query cost <= 2 us.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from bench.common import bench_server, interleaved_medians, print_table, setup_django

CHECKOUTS = 1000
QUERIES = 1000


def main() -> None:
    with bench_server(max_connections=50) as server:
        import os

        os.environ.update(
            DB_POOL="true", DB_POOL_SIZE="2", DB_POOL_PRE_PING="false", DB_POOL_TIMEOUT="5"
        )
        os.environ["DB_INSTRUMENTED"] = "true"  # the "dbconnmgr" row is dbconnmgr's engine
        setup_django(server.url)
        from django.db import connections
        from django.db.backends.signals import connection_created

        from dbconnmgr.process_stats import on_connection_created

        # Connected here whatever the settings: apps.ready() connects it only when an
        # unpooled alias of another ENGINE needs it.
        connection_created.connect(on_connection_created, dispatch_uid="dbconnmgr.process_stats")
        base = connections.settings["default"]
        assert base["ENGINE"] == "dbconnmgr.db.postgresql" and base["OPTIONS"]["pool"]
        for alias in ("django", "django+signal"):
            connections.settings[alias] = {
                **copy.deepcopy(base),
                "ENGINE": "django.db.backends.postgresql",
            }
        connections.settings["dbconnmgr"] = copy.deepcopy(base)

        def checkouts(alias: str) -> Callable[[], None]:
            conn = connections[alias]

            def loop() -> None:
                for _ in range(CHECKOUTS):
                    conn.ensure_connection()
                    conn.close()

            return loop

        def queries(alias: str) -> Callable[[], None]:
            conn = connections[alias]

            def loop() -> None:
                with conn.cursor() as cursor:
                    for _ in range(QUERIES):
                        cursor.execute("SELECT 1")
                conn.close()

            return loop

        def signal_off(fn: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                connection_created.disconnect(dispatch_uid="dbconnmgr.process_stats")
                try:
                    fn()
                finally:
                    connection_created.connect(
                        on_connection_created, dispatch_uid="dbconnmgr.process_stats"
                    )

            return run

        aliases = ("django", "django+signal", "dbconnmgr")

        def measure(loops: Callable[[str], Callable[[], None]]) -> dict[str, float]:
            return interleaved_medians(
                {
                    "django": signal_off(loops("django")),
                    "django+signal": loops("django+signal"),
                    "dbconnmgr": signal_off(loops("dbconnmgr")),
                },
                repeat=31,
                clock=time.thread_time,
            )

        check = measure(checkouts)
        query = measure(queries)
        rows: list[tuple[str, ...]] = []
        for alias in aliases:
            per_checkout = check[alias] / CHECKOUTS * 1e6
            per_query = query[alias] / QUERIES * 1e6
            rows.append(
                (
                    alias,
                    f"{per_checkout:.1f}",
                    f"{per_checkout - check['django'] / CHECKOUTS * 1e6:+.2f}",
                    f"{per_query:.1f}",
                    f"{per_query - query['django'] / QUERIES * 1e6:+.2f}",
                )
            )
        print_table(
            f"Pool checkout ({CHECKOUTS} per round) and query ({QUERIES} per round), "
            "medians of 31 interleaved rounds, "
            "CPU time of the calling thread",
            rows,
            ("engine", "us/checkout", "vs django", "us/query", "vs django"),
        )
        for alias in aliases:
            connections[alias].close_pool()  # type: ignore[attr-defined]
