"""The one health path every caller uses: read, evaluate (or evaluate the failure), add
PgBouncer's findings.

``check_health()`` (the public API), ``--action=health``, ``/metrics``, the monitor and the
admin page all go through :func:`judge`; :func:`check_health` adds the read. Which aliases
dbconnmgr reads is :func:`readable_aliases`, for every caller too. The judging itself is
pure (:mod:`dbconnmgr.core.health`); this module does the I/O around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbconnmgr.core.health import Report, Thresholds, evaluate, evaluate_unavailable
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.core.thresholds import resolve_thresholds
from dbconnmgr.exceptions import ServerUnavailable

__all__ = ["check_health", "judge", "project_thresholds", "readable_aliases"]


def project_thresholds(thresholds: Thresholds | Mapping[str, Any] | None = None) -> Thresholds:
    """``thresholds`` resolved, or the project's ``DBCONNMGR["THRESHOLDS"]`` when None.

    Raises:
        InvalidSetting: the project's THRESHOLDS are invalid.
        ValueError: invalid ``thresholds`` given.
    """
    if thresholds is None:
        from dbconnmgr.app_settings import thresholds as configured_thresholds

        thresholds = configured_thresholds()
    return resolve_thresholds(thresholds)


def judge(
    alias: str,
    read: Snapshot | ServerUnavailable,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    *,
    refused_connections: int | None = None,
    refused_full: int | None = None,
) -> Report:
    """The report of what was read of ``alias`` (a snapshot, or why none could be taken),
    with the findings of the PgBouncer configured in front of it.

    Args:
        alias: the Django database alias.
        read: the snapshot, or the :class:`ServerUnavailable` that reading raised.
        thresholds: as :func:`project_thresholds`.
        refused_connections, refused_full: as :func:`dbconnmgr.core.health.evaluate`.

    Raises:
        InvalidSetting: the project's THRESHOLDS, or ``DBCONNMGR["PGBOUNCER"]``, are invalid.
        ValueError: invalid ``thresholds`` given.
    """
    from dbconnmgr.pooler import read_pooler

    limits = project_thresholds(thresholds)
    pooler = read_pooler(alias)
    if isinstance(read, ServerUnavailable):
        return evaluate_unavailable(read, limits, pooler=pooler)
    return evaluate(
        read,
        limits,
        refused_connections=refused_connections,
        refused_full=refused_full,
        pooler=pooler,
    )


def check_health(
    using: str = "default", thresholds: Thresholds | Mapping[str, Any] | None = None
) -> Report:
    """Take a snapshot of ``using`` and evaluate it; an unreachable server is a finding.

    With a PgBouncer configured for ``using`` (``DBCONNMGR["PGBOUNCER"]``), its checks are
    added (``pgbouncer_*`` findings); a console that cannot be read is an UNKNOWN finding.
    An alias whose ENGINE cannot be loaded is a ``configuration_error`` finding.

    A pooled alias (``OPTIONS["pool"]``) is read over a private, unpooled connection (the
    one ``--action=health`` uses), so the answer never waits for the application's pool.

    Raises:
        UnknownDatabaseAlias, UnsupportedDatabase: the alias cannot be checked at all.
        InvalidSetting: the project's ``DBCONNMGR["THRESHOLDS"]`` are invalid.
        ValueError: invalid ``thresholds`` given.
    """
    from dbconnmgr.backends import working_backend

    limits = project_thresholds(thresholds)  # invalid thresholds fail before any I/O
    read: Snapshot | ServerUnavailable
    try:
        # The CLI's private connection for a pooled alias: never wait for (or hold) a slot
        # of the application's pool, whose timeout would otherwise be the answer time.
        with working_backend(using) as backend:
            read = backend.snapshot()
    except ServerUnavailable as exc:
        read = exc
    return judge(using, read, limits)


def readable_aliases() -> list[str]:
    """The aliases of ``DATABASES`` dbconnmgr reads, in settings order: those whose engine
    has a dbconnmgr backend, and those whose ENGINE cannot even be loaded (reading them
    reports the ``configuration_error``, rather than leaving them out unseen).

    The ``--database=all`` of the command, the admin page's aliases and ``/metrics``' default.
    """
    from django.db import connections

    from dbconnmgr.backends import get_backend
    from dbconnmgr.exceptions import UnsupportedDatabase

    found = []
    for alias in connections:
        try:
            get_backend(alias)
        except UnsupportedDatabase:
            continue  # an engine dbconnmgr does not read (sqlite3...)
        except ServerUnavailable:
            pass  # an ENGINE that cannot be loaded: its health says so
        found.append(alias)
    return found
