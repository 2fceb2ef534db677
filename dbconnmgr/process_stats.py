"""Per-process connection figures: pool size, waiting, wait time, timeouts, churn, failures.

Read without a custom ENGINE: the pool's own ``get_stats()`` (read when asked, nothing per
checkout) and Django's ``connection_created`` signal (one count per new connection, unpooled
aliases). Failures by cause and the gate's refusals need the optional engine
``dbconnmgr.db.postgresql``, which reports them here. Nothing is added per query.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "FAILURE_CAUSES",
    "AliasFigures",
    "FailureCause",
    "collect",
    "count_failure",
    "count_opened",
    "failure_cause",
    "needs_signal",
    "on_connection_created",
    "process_figures",
    "release_checkout",
    "reserve_checkout",
    "reset",
]

FailureCause = Literal["too_many_clients", "timeout", "auth", "other"]
#: Why a connection could not be had, as counted (``timeout`` includes pool timeouts).
FAILURE_CAUSES: Final[tuple[FailureCause, ...]] = ("too_many_clients", "timeout", "auth", "other")
# ServerUnavailable.kind -> cause
_KIND_TO_CAUSE: Final[dict[str, FailureCause]] = {
    "full": "too_many_clients",
    "reserved": "too_many_clients",
    "timeout": "timeout",
    "auth": "auth",
}


@dataclass(slots=True)
class _Counters:
    opened: int = 0
    closed: int = 0
    rejected: int = 0
    in_use: int = 0
    failures: Counter[str] = field(default_factory=Counter)


_lock = threading.Lock()
_counters: dict[str, _Counters] = {}


def _for(alias: str) -> _Counters:
    counters = _counters.get(alias)
    if counters is None:
        with _lock:
            counters = _counters.setdefault(alias, _Counters())
    return counters


def count_opened(alias: str, connection: Any) -> None:
    """Count a new server connection of an unpooled alias, and its close when it goes.

    The close is counted when the driver's connection object is released (CPython frees
    it as soon as Django drops it after ``close()``).
    """
    counters = _for(alias)
    with _lock:
        counters.opened += 1
    weakref.finalize(connection, _count_closed, counters)


def _count_closed(counters: _Counters) -> None:
    with _lock:
        counters.closed += 1


def reserve_checkout(alias: str, limit: int | None) -> bool:
    """Take one of the process's ``limit`` pooled connections for a checkout.

    False (and counted as rejected) when ``limit`` are already out; ``limit=None`` never
    refuses. Every True must be matched by :func:`release_checkout`.
    """
    counters = _for(alias)
    with _lock:
        if limit is not None and counters.in_use >= limit:
            counters.rejected += 1
            return False
        counters.in_use += 1
        return True


def release_checkout(alias: str) -> None:
    """A checkout reserved by :func:`reserve_checkout` ended (returned or failed)."""
    counters = _for(alias)
    with _lock:
        counters.in_use -= 1


def failure_cause(exc: BaseException, alias: str) -> FailureCause:
    """The cause of a failed connection attempt, from the driver's error (classified by
    the alias's engine)."""
    from dbconnmgr.backends import classify_error
    from dbconnmgr.exceptions import ServerUnavailable

    problem = classify_error(exc, alias)
    if isinstance(problem, ServerUnavailable):
        return _KIND_TO_CAUSE.get(problem.kind, "other")
    return "other"


def count_failure(alias: str, exc: BaseException) -> FailureCause:
    """Count a failed connection attempt by cause; returns the cause."""
    cause = failure_cause(exc, alias)
    counters = _for(alias)
    with _lock:
        counters.failures[cause] += 1
    return cause


@dataclass(frozen=True, slots=True)
class AliasFigures:
    """One alias's figures in this process.

    Attributes:
        alias: the ``DATABASES`` alias.
        pooled: whether the alias has a pool open in this process.
        pool_min, pool_max: the pool's ``min_size`` / ``max_size`` (None unpooled).
        pool_size: connections the pool holds (in use, idle, or being opened).
        pool_available: idle connections ready in the pool.
        requests_waiting: requests waiting for a connection now.
        requests: checkouts asked of the pool so far.
        requests_queued: checkouts that had to wait.
        wait_seconds: total time requests waited.
        timeouts: requests that failed waiting (timeout or a full queue).
        rejected: requests the gate refused at once.
        in_use: pooled connections checked out by Django now (with the optional engine).
        opened: server connections opened.
        closed: server connections closed.
        failures: failed connection attempts by cause (with the optional engine; pooled
            aliases without it count them all as ``other``).
    """

    alias: str
    pooled: bool
    pool_min: int | None
    pool_max: int | None
    pool_size: int | None
    pool_available: int | None
    requests_waiting: int | None
    requests: int
    requests_queued: int
    wait_seconds: float
    timeouts: int
    rejected: int
    in_use: int
    opened: int
    closed: int
    failures: dict[str, int]


def process_figures(pools: dict[str, Any], aliases: list[str]) -> list[AliasFigures]:
    """The figures of ``aliases`` in this process; ``pools`` maps alias -> open pool."""
    result = []
    for alias in aliases:
        counters = _for(alias)
        with _lock:
            opened, closed, rejected = counters.opened, counters.closed, counters.rejected
            in_use = counters.in_use
            failures: dict[str, int] = {c: counters.failures.get(c, 0) for c in FAILURE_CAUSES}
        pool = pools.get(alias)
        if pool is None:
            result.append(
                AliasFigures(
                    alias,
                    False,
                    None,
                    None,
                    None,
                    None,
                    None,
                    0,
                    0,
                    0.0,
                    0,
                    rejected,
                    in_use,
                    opened,
                    closed,
                    failures,
                )
            )
            continue
        stats = pool.get_stats()
        pool_opened = stats.get("connections_num", 0) - stats.get("connections_errors", 0)
        counted = sum(failures.values())
        if stats.get("connections_errors", 0) > counted:  # without the engine: no cause
            failures["other"] += stats["connections_errors"] - counted
        result.append(
            AliasFigures(
                alias=alias,
                pooled=True,
                pool_min=stats.get("pool_min"),
                pool_max=stats.get("pool_max"),
                pool_size=stats.get("pool_size", 0),
                pool_available=stats.get("pool_available", 0),
                requests_waiting=stats.get("requests_waiting", 0),
                requests=stats.get("requests_num", 0),
                requests_queued=stats.get("requests_queued", 0),
                wait_seconds=stats.get("requests_wait_ms", 0) / 1000.0,
                timeouts=stats.get("requests_errors", 0),
                rejected=rejected,
                in_use=in_use,
                opened=pool_opened,
                # Every connection opened is in the pool or was closed.
                closed=max(0, pool_opened - stats.get("pool_size", 0)),
                failures=failures,
            )
        )
    return result


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: count a new connection of an unpooled alias.

    A pooled alias sends the signal on every checkout (the pool counts its own
    connections); the engine ``dbconnmgr.db.postgresql`` counts its connections itself.
    """
    if getattr(connection, "dbconnmgr_counts", False) or connection.settings_dict.get(
        "OPTIONS", {}
    ).get("pool"):
        return
    with contextlib.suppress(TypeError):  # a driver connection without weak references
        count_opened(connection.alias, connection.connection)


def needs_signal(databases: dict[str, Any]) -> bool:
    """Whether some alias is counted by the ``connection_created`` receiver only.

    Connecting a receiver costs every ``connection_created`` (every pooled checkout) a
    signal dispatch: it is connected only when an unpooled alias uses another ENGINE.
    """
    from dbconnmgr.database_settings import INSTRUMENTED_ENGINE

    return any(
        db.get("ENGINE") != INSTRUMENTED_ENGINE and not (db.get("OPTIONS") or {}).get("pool")
        for db in databases.values()
    )


def collect(aliases: list[str] | None = None) -> list[AliasFigures]:
    """This process's figures for ``aliases`` (default: every alias in ``DATABASES``)."""
    from django.db import connections

    names = list(connections) if aliases is None else aliases
    from dbconnmgr.internals import open_pool

    pools: dict[str, Any] = {}
    for alias in names:
        pool = open_pool(connections[alias])
        if pool is not None:
            pools[alias] = pool
    return process_figures(pools, names)


def reset() -> None:
    """Forget the counters (tests, and after ``fork()`` in a worker)."""
    with _lock:
        _counters.clear()
