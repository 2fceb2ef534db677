"""dbconnmgr: see, prevent and fix database connection exhaustion in Django projects.

The public API is re-exported here; see docs/ for a page per feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbconnmgr.exceptions import (
    ActionNotPossible,
    DbConnMgrError,
    InsufficientPrivilege,
    ServerUnavailable,
    UnknownDatabaseAlias,
    UnsupportedDatabase,
)
from dbconnmgr.snapshot import STATES, Connection, Group, ServerLimits, Snapshot
from dbconnmgr.termination import (
    Candidate,
    Criteria,
    LocalClose,
    TerminationReport,
    TerminationResult,
)

if TYPE_CHECKING:
    from dbconnmgr.actions import (
        close_idle_connections,
        close_local_connections,
        force_close_connections,
        project_identity,
    )

__version__ = "0.1.0"

__all__ = [
    "STATES",
    "ActionNotPossible",
    "Candidate",
    "Connection",
    "Criteria",
    "DbConnMgrError",
    "Group",
    "InsufficientPrivilege",
    "LocalClose",
    "ServerLimits",
    "ServerUnavailable",
    "Snapshot",
    "TerminationReport",
    "TerminationResult",
    "UnknownDatabaseAlias",
    "UnsupportedDatabase",
    "__version__",
    "close_idle_connections",
    "close_local_connections",
    "force_close_connections",
    "project_identity",
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


_LAZY = {
    "close_idle_connections",
    "close_local_connections",
    "force_close_connections",
    "project_identity",
}


def __getattr__(name: str) -> Any:
    # The actions import Django's database layer: load them on first use so that
    # ``import dbconnmgr`` stays cheap (settings.py imports dbconnmgr.config).
    if name in _LAZY:
        from dbconnmgr import actions

        return getattr(actions, name)
    raise AttributeError(f"module 'dbconnmgr' has no attribute {name!r}")
