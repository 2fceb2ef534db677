"""dbconnmgr: see, prevent and fix database connection exhaustion in Django projects.

The public API is re-exported here; see docs/ for a page per feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dbconnmgr.core.budget import Budget, Service, compute_budget, connector_share
from dbconnmgr.core.health import (
    Finding,
    Report,
    Severity,
    Thresholds,
    evaluate,
    evaluate_unavailable,
)
from dbconnmgr.core.snapshot import STATES, Connection, Group, ServerLimits, Snapshot
from dbconnmgr.core.termination import (
    Candidate,
    Criteria,
    LocalClose,
    TerminationReport,
    TerminationResult,
)
from dbconnmgr.exceptions import (
    ActionNotPossible,
    DbConnMgrError,
    InsufficientPrivilege,
    InvalidSetting,
    ServerUnavailable,
    UnknownDatabaseAlias,
    UnsupportedDatabase,
)

if TYPE_CHECKING:
    from dbconnmgr.core.documents import HealthDoc
    from dbconnmgr.database_settings import (
        PROFILES,
        append_server_options,
        database_config,
        normalize_database_settings,
    )

if TYPE_CHECKING:
    from dbconnmgr.actions import (
        cancel_long_queries,
        close_idle_connections,
        close_local_connections,
        force_close_connections,
        project_identity,
    )

if TYPE_CHECKING:
    from dbconnmgr.block_monitor import (
        AliasStats,
        LeakedConnection,
        MonitorStats,
        connection_monitor,
    )
    from dbconnmgr.core.samples import Change, HourStats, PeakReport, Sample, SampleWindow
    from dbconnmgr.history import peak_hours, prune_samples, record_sample
    from dbconnmgr.monitor_loop import Monitor, iter_samples

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "STATES",
    "ActionNotPossible",
    "AliasStats",
    "Budget",
    "Candidate",
    "Change",
    "Connection",
    "Criteria",
    "DbConnMgrError",
    "Finding",
    "Group",
    "HourStats",
    "InsufficientPrivilege",
    "InvalidSetting",
    "LeakedConnection",
    "LocalClose",
    "Monitor",
    "MonitorStats",
    "PeakReport",
    "Report",
    "Sample",
    "SampleWindow",
    "ServerLimits",
    "ServerUnavailable",
    "Service",
    "Severity",
    "Snapshot",
    "TerminationReport",
    "TerminationResult",
    "UnknownDatabaseAlias",
    "UnsupportedDatabase",
    "__version__",
    "append_server_options",
    "cancel_long_queries",
    "check_connection_health",
    "check_health",
    "close_idle_connections",
    "close_local_connections",
    "compute_budget",
    "connection_monitor",
    "connector_share",
    "database_config",
    "evaluate",
    "evaluate_unavailable",
    "force_close_connections",
    "iter_samples",
    "normalize_database_settings",
    "peak_hours",
    "project_identity",
    "prune_samples",
    "record_sample",
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


# Imported on first use: ``import dbconnmgr`` stays light (settings.py imports
# dbconnmgr.database_settings before Django is set up), imports neither django.db nor
# django-environ, and the pure core imports without either.
_LAZY = {
    "PROFILES": "dbconnmgr.database_settings",
    "append_server_options": "dbconnmgr.database_settings",
    "database_config": "dbconnmgr.database_settings",
    "normalize_database_settings": "dbconnmgr.database_settings",
    "AliasStats": "dbconnmgr.block_monitor",
    "LeakedConnection": "dbconnmgr.block_monitor",
    "MonitorStats": "dbconnmgr.block_monitor",
    "connection_monitor": "dbconnmgr.block_monitor",
    "cancel_long_queries": "dbconnmgr.actions",
    "close_idle_connections": "dbconnmgr.actions",
    "close_local_connections": "dbconnmgr.actions",
    "force_close_connections": "dbconnmgr.actions",
    "project_identity": "dbconnmgr.actions",
    "Monitor": "dbconnmgr.monitor_loop",
    "iter_samples": "dbconnmgr.monitor_loop",
    "peak_hours": "dbconnmgr.history",
    "prune_samples": "dbconnmgr.history",
    "record_sample": "dbconnmgr.history",
    "Change": "dbconnmgr.core.samples",
    "HourStats": "dbconnmgr.core.samples",
    "PeakReport": "dbconnmgr.core.samples",
    "Sample": "dbconnmgr.core.samples",
    "SampleWindow": "dbconnmgr.core.samples",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'dbconnmgr' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def check_health(
    using: str = "default", thresholds: Thresholds | Mapping[str, Any] | None = None
) -> Report:
    """Take a snapshot of ``using`` and evaluate it; an unreachable server is a finding.

    With a PgBouncer configured for ``using`` (``DBCONNMGR["PGBOUNCER"]``), its checks are
    added (``pgbouncer_*`` findings); a console that cannot be read is an UNKNOWN finding.

    A pooled alias (``OPTIONS["pool"]``) is read over a private, unpooled connection (the
    one ``--action=health`` uses), so the answer never waits for the application's pool.

    Args:
        using: the Django database alias.
        thresholds: THRESHOLDS keys overriding the defaults; None reads the settings.

    Raises:
        UnknownDatabaseAlias, UnsupportedDatabase: the alias cannot be checked at all.
        InvalidSetting: the project's ``DBCONNMGR["THRESHOLDS"]`` are invalid.
        ValueError: invalid ``thresholds`` given.
    """
    from dbconnmgr.health import check_health as check

    return check(using, thresholds)


def check_connection_health(
    using: str = "default", thresholds: Thresholds | Mapping[str, Any] | None = None
) -> HealthDoc:
    """The health of database alias ``using`` as a plain dict (see docs/json.md).

    Keys: ``schema``, ``alias``, ``database`` (the server's database name), ``status``
    (``ok``, ``warning``, ``critical``, ``unknown``), ``status_code`` (the Nagios exit
    code), ``summary``, ``taken_at``, ``findings`` (every check, ok ones included: ``code``,
    ``subject``, ``severity``, ``message``, ``data``) and ``server_info``
    (``total_connections``, ``max_connections``, ``usable_connections``,
    ``utilization_percent`` of the usable slots, ``active_connections``,
    ``idle_connections``, ``idle_in_transaction_connections``...; None values and
    ``reachable: False`` when the server could not be read). On PostgreSQL the same dict is
    also ``postgresql_info``. Counts never include the connection the check read with.
    Never raises for an unreachable, full or refusing server, nor for a misconfigured alias
    (bad OPTIONS, no CONNECT privilege...): that is a critical or unknown status.

    Raises:
        UnknownDatabaseAlias, UnsupportedDatabase: the alias cannot be checked at all.
        InvalidSetting: the project's ``DBCONNMGR["THRESHOLDS"]`` are invalid.
    """
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    from dbconnmgr.payloads import health_payload

    report = check_health(using, thresholds)
    try:
        vendor: str | None = connections[using].vendor
    except ImproperlyConfigured:  # an ENGINE that cannot be loaded: configuration_error
        vendor = None
    return health_payload(report, vendor=vendor)
