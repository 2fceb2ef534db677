"""dbconnmgr: see, prevent and fix database connection exhaustion in Django projects.

The public API is re-exported here; see docs/ for a page per feature.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "STATES",
    "Budget",
    "Connection",
    "DbConnMgrError",
    "Group",
    "ServerLimits",
    "ServerUnavailable",
    "Service",
    "Snapshot",
    "UnknownDatabaseAlias",
    "UnsupportedDatabase",
    "__version__",
    "append_server_options",
    "compute_budget",
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
