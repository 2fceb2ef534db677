"""Connection budget: what every service may open against the slots the server has.

Pure arithmetic, no I/O. A service runs ``instances x processes`` processes. Django gives
every thread its own connection, and a pooled one holds one pool connection at a time, so
a process holds at most one connection per thread; with a pool, at most its ``max_size``
too (``DB_MAX_OVERFLOW`` is part of ``max_size``). Threads that use the database outside
requests (a scheduler, a thread pool of the project's own) count as threads. The server's
usable slots, minus the headroom kept for people and one-off jobs, times the safety
factor, is the capacity the services may fill::

    capacity = floor((usable_connections - headroom) x safety)
    demand   = sum(instances x processes x min(pool_max_size, threads))   (threads without a pool)

The largest safe ``DB_MAX_CONNS`` per process spreads what the persistent services leave
over every pooled process; with one service and no headroom it is the connector formula
``usable / n x 0.95``. Worked examples are in docs/budget.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

__all__ = [
    "DEFAULT_SAFETY",
    "Budget",
    "Service",
    "ServiceBudget",
    "compute_budget",
    "connector_share",
    "parse_service",
    "pool_max_size_from_settings",
    "services_from_setting",
    "unique_services",
]

#: The safety factor of the connector formula ``max / n x 0.95``.
DEFAULT_SAFETY: Final = 0.95

_SERVICE_RE: Final = re.compile(
    r"^(?P<name>[A-Za-z0-9_.\-]+)="
    r"(?:(?P<instances>[0-9]+)x)?(?P<processes>[0-9]+)x(?P<threads>[0-9]+)"
    r"(?::(?P<pool>[0-9]+|persistent))?$",
    re.ASCII,
)
#: The largest count a service field takes (instances, processes, threads, pool size).
MAX_SERVICE_COUNT: Final = 1_000_000
#: psycopg_pool's default min_size (and max_size, which defaults to it).
PSYCOPG_POOL_MIN_SIZE: Final = 4
SERVICE_SYNTAX: Final = "NAME=[INSTANCESx]PROCESSESxTHREADS[:POOL_MAX_SIZE|:persistent]"


@dataclass(frozen=True, slots=True)
class Service:
    """One kind of process that connects to the database.

    Attributes:
        name: ``web``, ``worker``...
        processes: processes per instance (gunicorn workers, celery concurrency...).
        threads: threads per process that may each use a connection.
        instances: hosts or containers running it.
        pool_max_size: the per-process pool's ``max_size``; None without a pool (persistent
            connections: one per thread).
    """

    name: str
    processes: int
    threads: int = 1
    instances: int = 1
    pool_max_size: int | None = None

    def __post_init__(self) -> None:
        for label in ("processes", "threads", "instances", "pool_max_size"):
            value = getattr(self, label)
            if value is None and label == "pool_max_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f"service {self.name!r}: {label} must be a whole number, got {value!r}"
                )
            if not 1 <= value <= MAX_SERVICE_COUNT:
                raise ValueError(
                    f"service {self.name!r}: {label} must be >= 1 and <= {MAX_SERVICE_COUNT}, "
                    f"got {value}"
                )

    @property
    def pooled(self) -> bool:
        """True when each process uses a pool."""
        return self.pool_max_size is not None

    @property
    def total_processes(self) -> int:
        """instances x processes."""
        return self.instances * self.processes

    @property
    def connections_per_process(self) -> int:
        """The most connections a process holds: one per thread, and with a pool no more
        than its max_size (a pool larger than the threads never fills)."""
        if self.pool_max_size is None:
            return self.threads
        return min(self.pool_max_size, self.threads)

    @property
    def demand(self) -> int:
        """Connections this service may hold at its peak."""
        return self.total_processes * self.connections_per_process


@dataclass(frozen=True, slots=True)
class ServiceBudget:
    """One service's line in the budget.

    Attributes:
        service: the service.
        safe_pool_max_size: the largest per-process pool this service may have, the other
            services unchanged (0 when not even a pool of 1 fits: no size to set, since
            ``database_config()`` refuses 0).
    """

    service: Service
    safe_pool_max_size: int


@dataclass(frozen=True, slots=True)
class Budget:
    """Demand of every service against the server's usable slots.

    Attributes:
        services: one line per service.
        usable_connections: slots an ordinary role may use (max_connections minus the
            reserved ones, capped by the database's or role's connection limit).
        headroom: slots kept free for admins, migrations, psql.
        safety: fraction of the rest the services may fill (0.95).
        capacity: ``floor((usable - headroom) x safety)``.
        demand: connections the services may hold at their peak.
        safe_pool_max_size: the largest ``DB_MAX_CONNS`` every pooled process may have
            (every process, if none is pooled yet); 0 when not even 1 fits (no size to
            set: ``database_config()`` refuses 0).
    """

    services: tuple[ServiceBudget, ...]
    usable_connections: int
    headroom: int
    safety: float
    capacity: int
    demand: int
    safe_pool_max_size: int

    @property
    def fits(self) -> bool:
        """True when the demand is within the capacity."""
        return self.demand <= self.capacity

    @property
    def spare(self) -> int:
        """capacity - demand (negative when over budget)."""
        return self.capacity - self.demand

    @property
    def demand_with_headroom(self) -> int:
        """demand + headroom: what the server must hold at the worst moment."""
        return self.demand + self.headroom


def _fraction(safety: float) -> Fraction:
    # Fraction(str(0.95)) is exactly 19/20, so 200 x 0.95 is 190, not 189.99999.
    value = Fraction(str(safety))
    if not 0 < value <= 1:
        raise ValueError(f"safety must be > 0 and <= 1, got {safety}")
    return value


def connector_share(max_connections: int, connectors: int, safety: float = DEFAULT_SAFETY) -> int:
    """The connector formula: ``floor(max_connections / connectors x safety)``.

    >>> connector_share(200, 4)
    47
    """
    if connectors < 1:
        raise ValueError(f"connectors must be >= 1, got {connectors}")
    return max(0, math.floor(Fraction(max_connections, connectors) * _fraction(safety)))


def compute_budget(
    services: Iterable[Service],
    usable_connections: int,
    *,
    headroom: int = 0,
    safety: float = DEFAULT_SAFETY,
) -> Budget:
    """The budget of ``services`` against ``usable_connections`` slots.

    Args:
        services: the processes that connect.
        usable_connections: ``Snapshot.limits.usable_connections`` (or less, when a
            database or role connection limit is lower).
        headroom: slots kept free for people and one-off jobs.
        safety: fraction of ``usable - headroom`` the services may fill, in (0, 1].

    Raises:
        ValueError: headroom < 0 or safety outside (0, 1].
    """
    if headroom < 0:
        raise ValueError(f"headroom must be >= 0, got {headroom}")
    factor = _fraction(safety)
    items = unique_services(services)
    capacity = max(0, math.floor((usable_connections - headroom) * factor))
    demand = sum(s.demand for s in items)

    lines = []
    for service in items:
        others = demand - service.demand
        lines.append(
            ServiceBudget(
                service=service,
                safe_pool_max_size=max(0, (capacity - others) // service.total_processes),
            )
        )
    if any(s.pooled for s in items):
        fixed = sum(s.demand for s in items if not s.pooled)
        pooled_processes = sum(s.total_processes for s in items if s.pooled)
    else:  # nothing pooled yet: the size every process could have with a pool
        fixed = 0
        pooled_processes = sum(s.total_processes for s in items)
    uniform = max(0, (capacity - fixed) // pooled_processes) if pooled_processes else capacity
    return Budget(
        services=tuple(lines),
        usable_connections=usable_connections,
        headroom=headroom,
        safety=safety,
        capacity=capacity,
        demand=demand,
        safe_pool_max_size=uniform,
    )


def unique_services(services: Iterable[Service]) -> tuple[Service, ...]:
    """The services as a tuple, each name once.

    Raises:
        ValueError: two services share a name (one would be counted twice, or hide the other).
    """
    items = tuple(services)
    seen: set[str] = set()
    for service in items:
        if service.name in seen:
            raise ValueError(f"service {service.name!r} is given twice: one line per service")
        seen.add(service.name)
    return items


def parse_service(text: str, *, pool_max_size: int | None = None) -> Service:
    """A service from ``NAME=[INSTANCESx]PROCESSESxTHREADS[:POOL_MAX_SIZE|:persistent]``.

    ``web=4x8`` is 4 processes of 8 threads; ``web=3x4x8:10`` is 3 instances of that with a
    pool of 10 per process. Without a suffix the service gets ``pool_max_size`` (the project's
    setting: None means persistent connections, one per thread).

    Raises:
        ValueError: the text does not follow the syntax (the message quotes it).
    """
    match = _SERVICE_RE.match(text.strip())
    if match is None:
        raise ValueError(f"expected {SERVICE_SYNTAX} (e.g. web=4x8), got {text!r}")
    pool = match["pool"]
    if pool == "persistent":
        size: int | None = None
    elif pool is not None:
        size = int(pool)
    else:
        size = pool_max_size
    return Service(
        name=match["name"],
        instances=int(match["instances"] or 1),
        processes=int(match["processes"]),
        threads=int(match["threads"]),
        pool_max_size=size,
    )


def pool_max_size_from_settings(database: Mapping[str, Any]) -> int | None:
    """The per-process pool's ``max_size`` of one ``DATABASES`` entry; None without a pool.

    ``OPTIONS["pool"] = True`` means psycopg_pool's defaults (``min_size`` 4 and
    ``max_size`` equal to it).
    """
    pool = (database.get("OPTIONS") or {}).get("pool")
    if not pool:
        return None
    if isinstance(pool, Mapping):
        size = pool.get("max_size") or pool.get("min_size") or PSYCOPG_POOL_MIN_SIZE
        return int(size)
    return PSYCOPG_POOL_MIN_SIZE


def services_from_setting(value: Any, *, pool_max_size: int | None = None) -> list[Service]:
    """Services from ``DBCONNMGR["SERVICES"]``: strings in the ``--service`` syntax or dicts
    with the fields of :class:`Service` (``pool_max_size`` defaults to ``pool_max_size``).

    Raises:
        ValueError: an entry that is neither, a bad field, or a name given twice (the message
            names it).
    """
    if value is not None and (isinstance(value, str | Mapping) or not isinstance(value, Iterable)):
        raise ValueError(f"DBCONNMGR['SERVICES'] must be a list of services, got {value!r}")
    services = []
    for entry in value or ():
        if isinstance(entry, str):
            services.append(parse_service(entry, pool_max_size=pool_max_size))
        elif isinstance(entry, Mapping):
            if "pool_size" in entry:
                raise ValueError(
                    f"DBCONNMGR['SERVICES'] entry {dict(entry)!r}: 'pool_size' is now "
                    "'pool_max_size' (the pool's max_size per process)"
                )
            fields = {"pool_max_size": pool_max_size, **entry}
            try:
                services.append(Service(**fields))
            except TypeError as exc:
                raise ValueError(f"DBCONNMGR['SERVICES'] entry {dict(entry)!r}: {exc}") from None
        else:
            raise ValueError(f"DBCONNMGR['SERVICES'] entries are strings or dicts, got {entry!r}")
    return list(unique_services(services))
