"""dbconnmgr: see, prevent and fix database connection exhaustion in Django projects.

The public API is re-exported here; see docs/ for a page per feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbconnmgr.budget import Budget, Service, compute_budget, connector_share
from dbconnmgr.config import (
    PROFILES,
    append_server_options,
    database_config,
    normalize_database_settings,
)
from dbconnmgr.exceptions import (
    DbConnMgrError,
    ServerUnavailable,
    UnknownDatabaseAlias,
    UnsupportedDatabase,
)
from dbconnmgr.snapshot import STATES, Connection, Group, ServerLimits, Snapshot

if TYPE_CHECKING:
    from dbconnmgr.monitoring_block import (
        AliasStats,
        LeakedConnection,
        MonitorStats,
        connection_monitor,
    )

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "STATES",
    "AliasStats",
    "Budget",
    "Connection",
    "DbConnMgrError",
    "Group",
    "LeakedConnection",
    "MonitorStats",
    "ServerLimits",
    "ServerUnavailable",
    "Service",
    "Snapshot",
    "UnknownDatabaseAlias",
    "UnsupportedDatabase",
    "__version__",
    "append_server_options",
    "compute_budget",
    "connection_monitor",
    "connector_share",
    "database_config",
    "normalize_database_settings",
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
# dbconnmgr.config before Django is set up) and does not import django.db.
_LAZY = {
    "AliasStats": "dbconnmgr.monitoring_block",
    "LeakedConnection": "dbconnmgr.monitoring_block",
    "MonitorStats": "dbconnmgr.monitoring_block",
    "connection_monitor": "dbconnmgr.monitoring_block",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'dbconnmgr' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
