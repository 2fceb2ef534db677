"""dbconnmgr: see, prevent and fix database connection exhaustion in Django projects.

The public API is re-exported here; see docs/ for a page per feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbconnmgr.exceptions import (
    DbConnMgrError,
    ServerUnavailable,
    UnknownDatabaseAlias,
    UnsupportedDatabase,
)
from dbconnmgr.health import Finding, Report, Severity, evaluate, evaluate_unavailable
from dbconnmgr.snapshot import STATES, Connection, Group, ServerLimits, Snapshot

__version__ = "0.1.0"

__all__ = [
    "STATES",
    "Connection",
    "DbConnMgrError",
    "Finding",
    "Group",
    "Report",
    "ServerLimits",
    "ServerUnavailable",
    "Severity",
    "Snapshot",
    "UnknownDatabaseAlias",
    "UnsupportedDatabase",
    "__version__",
    "check_connection_health",
    "check_health",
    "evaluate",
    "evaluate_unavailable",
    "take_snapshot",
]


def take_snapshot(using: str = "default") -> Snapshot:
    """Read every client connection and the server's limits for database alias ``using``.

    One round trip over Django's connection for that alias.

    Raises:
        UnknownDatabaseAlias, UnsupportedDatabase, ServerUnavailable
    """
    from dbconnmgr.backends import get_backend

    return get_backend(using).snapshot()


def check_health(using: str = "default", thresholds: Mapping[str, Any] | None = None) -> Report:
    """Take a snapshot of ``using`` and evaluate it; an unreachable server is a finding.

    Args:
        using: the Django database alias.
        thresholds: THRESHOLDS keys overriding the defaults; None reads the settings.

    Raises:
        UnknownDatabaseAlias, UnsupportedDatabase: the alias cannot be checked at all.
        ValueError: invalid thresholds.
    """
    try:
        snapshot = take_snapshot(using)
    except ServerUnavailable as exc:
        return evaluate_unavailable(exc)
    return evaluate(snapshot, thresholds)


def check_connection_health(
    using: str = "default", thresholds: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The health of database alias ``using`` as a plain dict (see docs/health.md).

    Keys: ``status`` (``ok``, ``warning``, ``critical``, ``unknown``), ``status_code`` (the
    Nagios exit code), ``summary``, ``findings`` (every check, ok ones included: ``code``,
    ``subject``, ``severity``, ``message``, ``data``) and ``postgresql_info``
    (``total_connections``, ``max_connections``, ``usable_connections``,
    ``utilization_percent`` of the usable slots, ``active_connections``,
    ``idle_connections``, ``idle_in_transaction_connections``...; None values and
    ``reachable: False`` when the server could not be read). Never raises for an
    unreachable, full or refusing server: that is a critical or unknown status.

    Raises:
        UnknownDatabaseAlias, UnsupportedDatabase: the alias cannot be checked at all.
    """
    from dbconnmgr.render import health_payload

    return health_payload(check_health(using, thresholds))
