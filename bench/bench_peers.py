"""What each tool counts on one server whose sessions are known: dbconnmgr's snapshot, a raw
``count(*)`` of pg_stat_activity, django-pgactivity (this environment) and pg-activity (the
``pg_activity`` tool's own queries, run in ``.venv-bench/pg_activity``: both packages are
named ``pgactivity`` and cannot share an environment).

Held while every tool looks: 5 idle sessions and 1 idle in a transaction in database
``postgres``, 2 idle in an aborted transaction, 2 idle sessions in a second database; the
server's own processes (checkpointer, autovacuum launcher...) run as always. Each tool's
own connection is left out of the truth: 10 sessions hold a slot, 2 of them aborted.
Correctness, not speed: no timing.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import Any

import psycopg

from bench import setup
from bench.common import bench_server, print_table, setup_django

#: Beyond the project's dependencies: django-pgactivity; pg-activity lives apart.
NEEDS = ("pgactivity.models",)

PG_ACTIVITY = """
import json, sys
from psycopg.conninfo import conninfo_to_dict
from pgactivity.data import Data
c = conninfo_to_dict(sys.argv[1])  # its keyword defaults (port 5432...) win over a DSN's
data = Data.pg_connect(host=c["host"], port=int(c["port"]), user=c["user"],
                       password=c["password"], database=c["dbname"])
info = data.pg_get_server_information()
print(json.dumps({"total": info.total, "aborted": info.idle_in_transaction_aborted}))
"""


def _hold(dsn: str, count: int, setup_sql: tuple[str, ...] = ()) -> list[psycopg.Connection]:
    conns = []
    for _ in range(count):
        conn = psycopg.connect(dsn, application_name="peer-held")
        for statement in setup_sql:
            # the division by zero leaves the transaction aborted, as wanted
            with contextlib.suppress(psycopg.Error):
                conn.execute(statement)
        conns.append(conn)
    return conns


def main() -> None:
    """Start a server, hold the sessions, ask every tool."""
    with bench_server(max_connections=50) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE other")
        other = server.dsn().replace("dbname=postgres", "dbname=other")
        held: list[psycopg.Connection] = []
        try:
            held += _hold(server.dsn(), 5, ("ROLLBACK",))
            held += _hold(server.dsn(), 1, ("SELECT 1",))  # idle in transaction
            held += _hold(server.dsn(), 2, ("SELECT 1 / 0",))  # idle in transaction (aborted)
            held += _hold(other, 2, ("ROLLBACK",))
            rows = _ask_everyone(server.url, server.dsn())
        finally:
            for conn in held:
                conn.close()
    print_table(
        "10 sessions hold a slot (2 of them idle in an aborted transaction, 2 in another "
        "database); each tool's own connection is not counted",
        rows,
        ("tool", "sessions counted", "aborted counted", "right?"),
    )


def _ask_everyone(url: str, dsn: str) -> list[tuple[str, ...]]:
    setup_django(url, "bench.pgactivity_settings")
    from pgactivity.models import PGActivity

    from dbconnmgr import take_snapshot

    def verdict(total: Any, aborted: Any) -> str:
        return "yes" if (total, aborted) == (10, 2) else "no"

    from django.db import connections

    snapshot = take_snapshot("default")
    ours = (snapshot.total_connections, snapshot.by_state().get("idle in transaction (aborted)"))
    # django-pgactivity: its queryset, as its `pgactivity` command lists it (its own
    # connection included; states upper-cased, spaces as underscores)
    listed = [a.state for a in PGActivity.objects.all()]
    django_pgactivity = (len(listed) - 1, listed.count("IDLE_IN_TRANSACTION_(ABORTED)"))
    connections.close_all()  # Django's connection must not count for the tools below
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) - 1 FROM pg_stat_activity").fetchone()
        raw = (row[0] if row else None, "-")
    python = setup.ensure("pg_activity")
    out = subprocess.run(
        [str(python), "-c", PG_ACTIVITY, dsn], capture_output=True, text=True, check=True
    ).stdout
    tool = json.loads(out)
    pg_activity = (tool["total"] - 1, tool["aborted"])
    return [
        ("dbconnmgr take_snapshot()", str(ours[0]), str(ours[1]), verdict(*ours)),
        ("raw count(*) FROM pg_stat_activity", str(raw[0]), "-", verdict(raw[0], 2)),
        ("django-pgactivity (PGActivity queryset)", str(django_pgactivity[0]),
         str(django_pgactivity[1]), verdict(*django_pgactivity)),
        ("pg_activity 3.x (its server information query)", str(pg_activity[0]),
         str(pg_activity[1]), verdict(*pg_activity)),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
