"""JSON-ready dicts built from snapshots (no rich import: the JSON path stays light)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from dbconnmgr.core.health import Report, session_brief
from dbconnmgr.core.samples import PeakReport, Sample
from dbconnmgr.core.snapshot import Connection, Group, Snapshot


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _group_payload(groups: list[Group]) -> list[dict[str, Any]]:
    return [{"name": g.name, "count": g.count, "by_state": g.by_state} for g in groups]


def connection_brief(conn: Connection | None, seconds: float | None) -> dict[str, Any] | None:
    """:func:`dbconnmgr.core.health.session_brief`, or None when there is no such session."""
    return None if conn is None else session_brief(conn, seconds)


def status_payload(snapshot: Snapshot, limit: int | None = None) -> dict[str, Any]:
    """The JSON document of ``--action=status --format=json`` (see docs/status.md)."""
    limits = snapshot.limits
    oldest = snapshot.oldest_transaction()
    longest_iit = snapshot.longest_idle_in_transaction()
    return {
        "database": snapshot.alias,
        "vendor": snapshot.vendor,
        "taken_at": snapshot.taken_at.isoformat(),
        "server": {
            "version": limits.version,
            "version_num": limits.version_num,
            "max_connections": limits.max_connections,
            "superuser_reserved_connections": limits.superuser_reserved_connections,
            "reserved_connections": limits.reserved_connections,
            "usable_connections": limits.usable_connections,
            "database_limits": limits.database_limits,
            "role_limits": limits.role_limits,
            "current_user": limits.current_user,
            "current_user_is_superuser": limits.is_superuser,
        },
        "total_connections": snapshot.total_connections,
        "free_connections": snapshot.free_connections,
        "utilization_percent": snapshot.utilization_percent,
        "usable_utilization_percent": snapshot.usable_utilization_percent,
        "by_state": snapshot.by_state(),
        "by_application": _group_payload(snapshot.by_application(limit)),
        "by_user": _group_payload(snapshot.by_user(limit)),
        "by_database": _group_payload(snapshot.by_database(limit)),
        "by_client": _group_payload(snapshot.by_client(limit)),
        "longest_idle_in_transaction_seconds": _round(
            longest_iit.state_seconds if longest_iit else None
        ),
        "longest_idle_in_transaction": connection_brief(
            longest_iit, longest_iit.state_seconds if longest_iit else None
        ),
        "oldest_transaction_seconds": _round(oldest.transaction_seconds if oldest else None),
        "oldest_transaction": connection_brief(
            oldest, oldest.transaction_seconds if oldest else None
        ),
        "waiting_connections": len(snapshot.waiting_connections),
        "visibility": snapshot.visibility,
        "hidden_connections": snapshot.hidden_connections,
        "own_pid": snapshot.own_pid,
    }


# -- health -----------------------------------------------------------------------------------
def postgresql_info(snapshot: Snapshot | None) -> dict[str, Any]:
    """The figures of ``check_connection_health()["postgresql_info"]`` (None when down).

    ``utilization_percent`` is of the *usable* slots, the figure the thresholds use.
    """
    keys = (
        "version", "total_connections", "max_connections", "superuser_reserved_connections",
        "reserved_connections", "usable_connections", "free_connections",
        "utilization_percent", "max_connections_utilization_percent", "active_connections",
        "idle_connections", "idle_in_transaction_connections",
        "idle_in_transaction_aborted_connections", "waiting_connections",
        "hidden_connections", "visibility", "longest_idle_in_transaction_seconds",
        "oldest_transaction_seconds", "longest_query_seconds",
    )  # fmt: skip
    if snapshot is None:
        return {"reachable": False, **dict.fromkeys(keys)}
    limits = snapshot.limits
    iit = snapshot.longest_idle_in_transaction()
    oldest = snapshot.oldest_transaction()
    queries = [c.query_seconds for c in snapshot.others() if c.query_seconds is not None]
    return {
        "reachable": True,
        "version": limits.version,
        "total_connections": snapshot.total_connections,
        "max_connections": limits.max_connections,
        "superuser_reserved_connections": limits.superuser_reserved_connections,
        "reserved_connections": limits.reserved_connections,
        "usable_connections": limits.usable_connections,
        "free_connections": snapshot.free_connections,
        "utilization_percent": snapshot.usable_utilization_percent,
        "max_connections_utilization_percent": snapshot.utilization_percent,
        "active_connections": snapshot.count_state("active"),
        "idle_connections": snapshot.count_state("idle"),
        "idle_in_transaction_connections": snapshot.count_state(
            "idle in transaction", "idle in transaction (aborted)"
        ),
        "idle_in_transaction_aborted_connections": snapshot.count_state(
            "idle in transaction (aborted)"
        ),
        "waiting_connections": len(snapshot.waiting_connections),
        "hidden_connections": snapshot.hidden_connections,
        "visibility": snapshot.visibility,
        "longest_idle_in_transaction_seconds": _round(iit.state_seconds if iit else None),
        "oldest_transaction_seconds": _round(oldest.transaction_seconds if oldest else None),
        "longest_query_seconds": _round(max(queries)) if queries else None,
    }


def health_payload(report: Report) -> dict[str, Any]:
    """The document of ``check_connection_health()``, ``--action=health --format=json`` and
    the HTTP endpoint (see docs/health.md). It holds no query text and no client address."""
    snapshot = report.snapshot
    return {
        "database": report.alias,
        "status": report.status.label,
        "status_code": int(report.status),
        "summary": report.summary(),
        "checked_at": snapshot.taken_at.isoformat() if snapshot else None,
        "findings": [f.as_dict() for f in report.findings],
        "postgresql_info": postgresql_info(snapshot),
    }


def nagios_perfdata(report: Report, thresholds: dict[str, Any]) -> str:
    """Nagios performance data for the first line of ``--action=health``."""
    snapshot = report.snapshot
    if snapshot is None:
        return ""

    def num(value: Any) -> str:
        return "" if value is None else f"{value:g}"

    usable = snapshot.limits.usable_connections
    return " ".join(
        [
            f"utilization={snapshot.usable_utilization_percent:g}%;"
            f"{num(thresholds.get('UTILIZATION_WARNING'))};"
            f"{num(thresholds.get('UTILIZATION_CRITICAL'))};0;100",
            f"connections={snapshot.total_connections};"
            f"{num(thresholds.get('CONNECTIONS_WARNING'))};"
            f"{num(thresholds.get('CONNECTIONS_CRITICAL'))};0;{usable}",
            f"idle={snapshot.count_state('idle')}",
            "idle_in_transaction="
            f"{snapshot.count_state('idle in transaction', 'idle in transaction (aborted)')}",
            f"waiting={len(snapshot.waiting_connections)}",
        ]
    )


# -- monitor and peak ----------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def sample_payload(sample: Sample) -> dict[str, Any]:
    """One JSON Lines record of ``--action=monitor`` (see docs/monitor.md).

    Every record has the same keys; the counts are null when the server was unreachable.
    """
    change = sample.change
    iit = sample.longest_idle_in_transaction
    return {
        "sequence": sample.sequence,
        "database": sample.alias,
        "taken_at": _iso(sample.taken_at),
        "reachable": sample.reachable,
        "total_connections": sample.total_connections,
        "usable_connections": sample.usable_connections,
        "max_connections": sample.max_connections,
        "usable_utilization_percent": sample.usable_utilization_percent,
        "by_state": sample.by_state,
        "by_application": sample.by_application,
        "active_sessions": sample.active_sessions,
        "aas": sample.aas,
        "aas_window_seconds": sample.aas_window_seconds,
        "aas_samples": sample.aas_samples,
        "waiting_connections": sample.waiting_connections,
        "longest_idle_in_transaction": connection_brief(iit, iit.state_seconds if iit else None),
        "change": None
        if change is None
        else {
            "total_connections": change.total_connections,
            "by_state": change.by_state,
            "by_application": change.by_application,
        },
        "error": sample.error,
        "unreachable_since": _iso(sample.unreachable_since),
        "recovered_from": _iso(sample.recovered_from),
    }


def peak_payload(report: PeakReport, alias: str, days: int) -> dict[str, Any]:
    """The JSON document of ``--action=peak --format=json`` (see docs/monitor.md)."""
    peak = report.peak_hour
    return {
        "database": alias,
        "days": days,
        "time_zone": timezone.get_current_timezone_name(),
        "samples": report.samples,
        "first": _iso(report.first),
        "last": _iso(report.last),
        "hours": [
            {"hour": h.hour, "samples": h.samples, "max": h.max, "average": h.average, "p95": h.p95}
            for h in report.hours
        ],
        "peak_hour": None if peak is None else peak.hour,
        "peak_day": None if report.peak_day is None else report.peak_day.isoformat(),
        "peak_day_hour": report.peak_day_hour,
        "peak_connections": report.peak_connections,
        "peak_at": _iso(report.peak_at),
    }
