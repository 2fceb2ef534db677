"""Load through PgBouncer: the same 128 clients, gunicorn (4 processes x 32 threads) and
server with max_connections 50 as ``bench_load``, measured side by side in one run:

- ``helpers``: dbconnmgr's native pool per process, sized by the budget (the baseline)
- ``PgBouncer``: ``database_config(pgbouncer="transaction")`` (``DB_PGBOUNCER=transaction``,
  no native pool, CONN_MAX_AGE=0: a new client connection to PgBouncer per request)
  through a throwaway PgBouncer in transaction mode whose ``default_pool_size`` is what
  the budget gives its one line (the server sees PgBouncer's pool, not the threads)
- the same PgBouncer with persistent client connections (CONN_MAX_AGE=600): each thread
  keeps its login to PgBouncer, which holds no server connection while idle
- ``CONN_MAX_AGE=0`` straight to the server, for perspective: what PgBouncer rescues

Each PgBouncer round gets a fresh PgBouncer (started before gunicorn, stopped after it), so
no server connection it keeps idle eats into the next configuration's slots. Traffic goes
to 127.0.0.1 only; ``BENCH_LOAD_SECONDS`` and ``BENCH_LOAD_ROUNDS`` bound the run as in
``bench_load``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bench.bench_load import (
    HEADROOM,
    MAX_CONNECTIONS,
    PROCESSES,
    Config,
    budgeted_pool_size,
    configurations,
    print_setup,
    print_summary,
    rounds_and_seconds,
    run_rounds,
)
from bench.common import bench_server
from dbconnmgr.core.budget import Service, compute_budget
from devtools.pgbouncerserver import PgBouncerServer
from devtools.pgserver import PgServer

#: Beyond the project's dependencies (gunicorn serves example_project); see bench/setup.py.
NEEDS = ("gunicorn",)


def pgbouncer_pool_size(usable: int) -> int:
    """PgBouncer's ``default_pool_size``: the budget of its one line (41 of 47 usable)."""
    pooler = Service("pgbouncer", processes=1, threads=1, pool_max_size=1)
    return compute_budget([pooler], usable, headroom=HEADROOM).safe_pool_max_size


def through_pgbouncer(pool_size: int, conn_max_age: int = 0) -> Config:
    """Through a fresh PgBouncer in transaction mode around each round.

    ``conn_max_age`` 0 is the brief's setting (a client login to PgBouncer per request);
    600 keeps each thread's client connection to PgBouncer (idle, it holds no server slot).
    """

    @contextmanager
    def setup(server: PgServer) -> Iterator[dict[str, str]]:
        bouncer = PgBouncerServer(
            server, pool_mode="transaction", default_pool_size=pool_size, reserve_pool_size=0
        ).start()
        try:
            yield {"DATABASE_URL": bouncer.url()}
        finally:
            bouncer.stop()

    return Config(
        f"PgBouncer transaction (pool {pool_size}), CONN_MAX_AGE={conn_max_age}",
        {"DB_PGBOUNCER": "transaction", "CONN_MAX_AGE": str(conn_max_age)},
        setup,
    )


def main() -> None:
    rounds, seconds = rounds_and_seconds()
    with bench_server(max_connections=MAX_CONNECTIONS) as server:
        usable = MAX_CONNECTIONS - 3  # superuser_reserved_connections defaults to 3
        per_process = budgeted_pool_size(usable)
        bouncer_pool = pgbouncer_pool_size(usable)
        direct = configurations(per_process)
        helpers = next(name for name in direct if name.startswith("helpers"))
        configs = [
            Config(helpers, direct[helpers]),
            through_pgbouncer(bouncer_pool),
            through_pgbouncer(bouncer_pool, conn_max_age=600),
            Config("CONN_MAX_AGE=0", direct["CONN_MAX_AGE=0"]),
        ]
        print_setup(
            usable,
            f"helpers floor(({usable} - {HEADROOM}) x 0.95 / {PROCESSES}) = {per_process} per "
            f"process, PgBouncer floor(({usable} - {HEADROOM}) x 0.95) = {bouncer_pool} server "
            "connections",
            rounds,
            seconds,
        )
        results = run_rounds(server, configs, rounds, seconds)
    print_summary(results, helpers)
