"""System check: can the configured pools fit the server? (``dbconnmgr.W015``)

The server's limit is not in the settings: reading it needs a connection, and a plain
``manage.py check`` (run by every ``runserver``, every deploy step) must not open one. So,
like Django's own database checks, this one runs only when Django passes ``databases``:
``manage.py check --database ALIAS`` (and ``migrate``, which checks the database it
migrates). Then, per alias dbconnmgr reads, one snapshot over a private connection (never a
slot of the project's pool) gives the usable slots, and the budget of
``DBCONNMGR["SERVICES"]`` (or, without services, one process with the alias's pool) is
compared with them. A server that cannot be read is left to Django's own checks and to
``--action=budget``; an alias behind PgBouncer is skipped (the server sees PgBouncer's pools).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

from dbconnmgr.core.budget import Budget, Service, compute_budget, pool_max_size_from_settings

__all__ = ["check_pools_fit", "pool_fit_messages"]


def pool_fit_messages(alias: str, budget: Budget, source: str) -> list[CheckMessage]:
    """W015 for ``alias`` when ``budget`` does not fit (``source``: where the usable slots
    come from); nothing when it fits."""
    if budget.fits:
        return []
    names = ", ".join(f"{line.service.name} {line.service.demand}" for line in budget.services)
    safe = budget.safe_pool_max_size
    advice = (
        f"a pool of at most {safe} per process fits"
        if safe
        else "not even a pool of 1 per process fits: fewer processes or more server slots"
    )
    return [
        Warning(
            f"DATABASES[{alias!r}]: the configured pools cannot fit the server: at their peak "
            f"they hold {budget.demand} connections ({names}), the capacity is "
            f"{budget.capacity} (floor(({budget.usable_connections} usable, {source}, - "
            f"{budget.headroom} headroom) x {budget.safety:g}))",
            hint=f"{advice}; manage.py db_connections --action=budget --database {alias} "
            "shows each service (describe them in DBCONNMGR['SERVICES']).",
            id="dbconnmgr.W015",
        )
    ]


def _services(alias: str, database: Any) -> list[Service]:
    from dbconnmgr.app_settings import get_setting
    from dbconnmgr.core.budget import services_from_setting

    pool = pool_max_size_from_settings(database)
    services = services_from_setting(get_setting("SERVICES"), pool_max_size=pool)
    if services or pool is None:
        return services
    # No services described: at least one process must be able to fill its pool.
    return [Service("one process", processes=1, threads=pool, pool_max_size=pool)]


def _alias_messages(alias: str) -> list[CheckMessage]:
    from dbconnmgr.app_settings import get_setting, pgbouncer_setting
    from dbconnmgr.backends import working_backend
    from dbconnmgr.cli.budget import effective_usable
    from dbconnmgr.exceptions import DbConnMgrError

    database = settings.DATABASES.get(alias, {})
    try:
        if pgbouncer_setting(alias) is not None:
            return []
        services = _services(alias, database)
        if not services:
            return []
        headroom = int(get_setting("BUDGET_HEADROOM"))
        safety = float(get_setting("BUDGET_SAFETY"))
        with working_backend(alias) as backend:
            snapshot = backend.snapshot()
    except (DbConnMgrError, ValueError):
        # Bad settings have their own checks (E1xx); an unreachable server, Django's.
        return []
    usable, source = effective_usable(snapshot, database.get("NAME"))
    budget = compute_budget(services, usable, headroom=headroom, safety=safety)
    return pool_fit_messages(alias, budget, source)


@register("dbconnmgr", Tags.database)
def check_pools_fit(
    app_configs: Any = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W015 (only with ``check --database``): the pools cannot fit the server's slots."""
    if databases is None:
        return []  # a plain check never connects
    from dbconnmgr.health import readable_aliases

    readable = set(readable_aliases())
    messages: list[CheckMessage] = []
    for alias in _ordered(databases):
        if alias in readable:
            messages.extend(_alias_messages(alias))
    return messages


def _ordered(databases: Iterable[str]) -> list[str]:
    return sorted(set(databases))
