"""dbconnmgr: see, prevent and fix database connection exhaustion in Django projects.

The public API is re-exported here; see docs/ for a page per feature.
"""

from __future__ import annotations

from dbconnmgr.exceptions import (
    DbConnMgrError,
    ServerUnavailable,
    UnknownDatabaseAlias,
    UnsupportedDatabase,
)
from dbconnmgr.history import peak_hours, prune_samples, record_sample
from dbconnmgr.monitoring import Monitor, iter_samples
from dbconnmgr.samples import Change, HourStats, PeakReport, Sample, SampleWindow
from dbconnmgr.snapshot import STATES, Connection, Group, ServerLimits, Snapshot

__version__ = "0.1.0"

__all__ = [
    "STATES",
    "Change",
    "Connection",
    "DbConnMgrError",
    "Group",
    "HourStats",
    "Monitor",
    "PeakReport",
    "Sample",
    "SampleWindow",
    "ServerLimits",
    "ServerUnavailable",
    "Snapshot",
    "UnknownDatabaseAlias",
    "UnsupportedDatabase",
    "__version__",
    "iter_samples",
    "peak_hours",
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
