"""JSON documents built from snapshots (no rich import: the JSON path stays light).

Each is declared once in :mod:`dbconnmgr.core.documents` and listed in docs/json.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.utils import timezone

from dbconnmgr.core.documents import (
    SCHEMAS,
    FindingDoc,
    GroupDoc,
    HealthDoc,
    MonitorDoc,
    PeakDoc,
    PgBouncerDoc,
    RetainedPeakDoc,
    ServerInfoDoc,
    SessionDoc,
    StatusDoc,
)
from dbconnmgr.core.health import Report, session_brief
from dbconnmgr.core.pooler import PoolerSnapshot, PoolerUnavailable
from dbconnmgr.core.retained import RetainedPeaks
from dbconnmgr.core.samples import PeakReport, Sample
from dbconnmgr.core.snapshot import Connection, Group, Snapshot


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _group_payload(groups: list[Group]) -> list[GroupDoc]:
    return [{"name": g.name, "connections": g.count, "by_state": g.by_state} for g in groups]


def connection_brief(conn: Connection | None, seconds: float | None) -> SessionDoc | None:
    """:func:`dbconnmgr.core.health.session_brief`, or None when there is no such session."""
    return None if conn is None else cast(SessionDoc, session_brief(conn, seconds))


def _add_vendor_figures(document: Any, vendor: str | None, figures: dict[str, Any] | None) -> None:
    """Figures only one engine reports go under that engine's own key (``"mysql"``),
    declared in :mod:`dbconnmgr.core.documents`; engines without any add no key."""
    if vendor and figures:
        document[vendor] = dict(figures)


def status_payload(
    snapshot: Snapshot,
    limit: int | None = None,
    pooler: PoolerSnapshot | PoolerUnavailable | None = None,
) -> StatusDoc:
    """The JSON document of ``--action=status --format=json`` (see docs/json.md).

    ``pooler``: the PgBouncer in front of the alias, as :func:`dbconnmgr.pooler.read_pooler`
    read it (the ``pgbouncer`` key is present only when one is configured).
    """
    limits = snapshot.limits
    oldest = snapshot.oldest_transaction()
    longest_iit = snapshot.longest_idle_in_transaction()
    longest_query = snapshot.longest_running_query()
    document: StatusDoc = {
        "schema": SCHEMAS["status"],
        "alias": snapshot.alias,
        "database": snapshot.database,
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
        "limited_by": snapshot.limited_by,
        "utilization_percent": snapshot.utilization_percent,
        "max_connections_utilization_percent": snapshot.max_connections_utilization_percent,
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
        "longest_query_seconds": _round(longest_query.running_seconds if longest_query else None),
        "longest_query": connection_brief(
            longest_query, longest_query.running_seconds if longest_query else None
        ),
        "waiting_connections": len(snapshot.waiting_connections),
        "visibility": snapshot.visibility,
        "hidden_connections": snapshot.hidden_connections,
        "own_pid": snapshot.own_pid,
    }
    _add_vendor_figures(document, snapshot.vendor, snapshot.extras)
    if pooler is not None:
        document["pgbouncer"] = pgbouncer_payload(pooler, limit)
    return document


def pgbouncer_payload(
    pooler: PoolerSnapshot | PoolerUnavailable, limit: int | None = None
) -> PgBouncerDoc:
    """The ``pgbouncer`` object of the status and health documents (see docs/json.md)."""
    if isinstance(pooler, PoolerUnavailable):
        return {
            "reachable": False,
            "console": pooler.console,
            "error": pooler.message,
            "version": None,
            "taken_at": None,
            "pool_mode": None,
            "max_client_conn": None,
            "default_pool_size": None,
            "reserve_pool_size": None,
            "max_db_connections": None,
            "max_user_connections": None,
            "client_connections": None,
            "waiting_client_connections": None,
            "maxwait_seconds": None,
            "server_connections": None,
            "max_server_connections": None,
            "pools": [],
            "by_application": [],
        }
    return {
        "reachable": True,
        "console": pooler.console,
        "error": None,
        "version": pooler.version,
        "taken_at": pooler.taken_at.isoformat(),
        "pool_mode": pooler.pool_mode,
        "max_client_conn": pooler.setting("max_client_conn"),
        "default_pool_size": pooler.setting("default_pool_size"),
        "reserve_pool_size": pooler.setting("reserve_pool_size"),
        "max_db_connections": pooler.setting("max_db_connections"),
        "max_user_connections": pooler.setting("max_user_connections"),
        "client_connections": pooler.client_connections,
        "waiting_client_connections": pooler.waiting_clients,
        "maxwait_seconds": pooler.maxwait_seconds,
        "server_connections": pooler.server_connections,
        "max_server_connections": pooler.max_server_connections(),
        "pools": [
            {
                "database": p.database,
                "user": p.user,
                "pool_mode": p.pool_mode,
                "pool_size": p.pool_size,
                "reserve_pool_size": p.reserve_pool_size,
                "active_client_connections": p.active_clients,
                "waiting_client_connections": p.waiting_clients,
                "active_server_connections": p.active_servers,
                "idle_server_connections": p.idle_servers,
                "used_server_connections": p.used_servers,
                "server_connections": p.server_connections,
                "max_server_connections": p.max_server_connections,
                "saturation_percent": p.saturation_percent,
                "maxwait_seconds": p.maxwait_seconds,
            }
            for p in pooler.pools
        ],
        "by_application": [
            {"name": name, "connections": count, "by_state": states}
            for name, count, states in pooler.by_application(limit)
        ],
    }


# -- health -----------------------------------------------------------------------------------
def server_info(snapshot: Snapshot | None) -> ServerInfoDoc:
    """The figures of ``check_connection_health()["server_info"]`` (None when down).

    ``utilization_percent`` is of the *usable* slots, the figure the thresholds use.
    """
    if snapshot is None:
        return {
            "reachable": False,
            "version": None,
            "total_connections": None,
            "max_connections": None,
            "superuser_reserved_connections": None,
            "reserved_connections": None,
            "usable_connections": None,
            "free_connections": None,
            "limited_by": None,
            "utilization_percent": None,
            "max_connections_utilization_percent": None,
            "active_connections": None,
            "idle_connections": None,
            "idle_in_transaction_connections": None,
            "idle_in_transaction_aborted_connections": None,
            "waiting_connections": None,
            "hidden_connections": None,
            "visibility": None,
            "longest_idle_in_transaction_seconds": None,
            "oldest_transaction_seconds": None,
            "longest_query_seconds": None,
        }
    limits = snapshot.limits
    iit = snapshot.longest_idle_in_transaction()
    oldest = snapshot.oldest_transaction()
    query = snapshot.longest_running_query()
    return {
        "reachable": True,
        "version": limits.version,
        "total_connections": snapshot.total_connections,
        "max_connections": limits.max_connections,
        "superuser_reserved_connections": limits.superuser_reserved_connections,
        "reserved_connections": limits.reserved_connections,
        "usable_connections": limits.usable_connections,
        "free_connections": snapshot.free_connections,
        "limited_by": snapshot.limited_by,
        "utilization_percent": snapshot.utilization_percent,
        "max_connections_utilization_percent": snapshot.max_connections_utilization_percent,
        "active_connections": snapshot.active_connections,
        "idle_connections": snapshot.idle_connections,
        "idle_in_transaction_connections": snapshot.idle_in_transaction_connections,
        "idle_in_transaction_aborted_connections": (
            snapshot.idle_in_transaction_aborted_connections
        ),
        "waiting_connections": len(snapshot.waiting_connections),
        "hidden_connections": snapshot.hidden_connections,
        "visibility": snapshot.visibility,
        "longest_idle_in_transaction_seconds": _round(iit.state_seconds if iit else None),
        "oldest_transaction_seconds": _round(oldest.transaction_seconds if oldest else None),
        "longest_query_seconds": _round(query.running_seconds if query else None),
    }


def health_payload(report: Report, vendor: str | None = None) -> HealthDoc:
    """The document of ``check_connection_health()``, ``--action=health --format=json`` and
    the HTTP endpoint (see docs/json.md). It holds no query text and no client address.

    ``server_info`` is vendor-neutral; on PostgreSQL the same dict is also
    ``postgresql_info``. ``vendor`` names the alias's vendor when the server was not read.
    """
    snapshot = report.snapshot
    vendor = snapshot.vendor if snapshot else vendor
    info = server_info(snapshot)
    document: HealthDoc = {
        "schema": SCHEMAS["health"],
        "alias": report.alias,
        "database": snapshot.database if snapshot else None,
        "vendor": vendor,
        "status": report.status.label,  # type: ignore[typeddict-item]
        "status_code": int(report.status),
        "summary": report.summary(),
        "taken_at": snapshot.taken_at.isoformat() if snapshot else None,
        "findings": [cast(FindingDoc, f.as_dict()) for f in report.findings],
        "server_info": info,
    }
    if vendor == "postgresql":
        document["postgresql_info"] = info
    _add_vendor_figures(document, vendor, snapshot.extras if snapshot else None)
    if report.pooler is not None:
        document["pgbouncer"] = pgbouncer_payload(report.pooler)
    return document


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
            f"utilization={snapshot.utilization_percent:g}%;"
            f"{num(thresholds.get('UTILIZATION_WARNING'))};"
            f"{num(thresholds.get('UTILIZATION_CRITICAL'))};0;100",
            f"connections={snapshot.total_connections};"
            f"{num(thresholds.get('CONNECTIONS_WARNING'))};"
            f"{num(thresholds.get('CONNECTIONS_CRITICAL'))};0;{usable}",
            f"idle={snapshot.idle_connections}",
            f"idle_in_transaction={snapshot.idle_in_transaction_connections}",
            f"waiting={len(snapshot.waiting_connections)}",
        ]
    )


# -- monitor and peak ----------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def sample_payload(sample: Sample) -> MonitorDoc:
    """One JSON Lines record of ``--action=monitor`` (see docs/json.md).

    Every record has the same keys; the counts are null when the server was unreachable.
    """
    change = sample.change
    iit = sample.longest_idle_in_transaction
    document: MonitorDoc = {
        "schema": SCHEMAS["monitor"],
        "sequence": sample.sequence,
        "alias": sample.alias,
        "database": sample.database,
        "taken_at": sample.taken_at.isoformat(),
        "reachable": sample.reachable,
        "total_connections": sample.total_connections,
        "usable_connections": sample.usable_connections,
        "max_connections": sample.max_connections,
        "free_connections": sample.free_connections,
        "utilization_percent": sample.utilization_percent,
        "max_connections_utilization_percent": sample.max_connections_utilization_percent,
        "by_state": sample.by_state,
        "by_application": sample.by_application,
        "active_connections": sample.active_connections,
        "aas": sample.aas,
        "aas_window_seconds": sample.aas_window_seconds,
        "aas_samples": sample.aas_samples,
        "waiting_connections": sample.waiting_connections,
        "longest_idle_in_transaction": connection_brief(iit, iit.state_seconds if iit else None),
        "refused_connections": sample.refused_connections,
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
    vendor = sample.snapshot.vendor if sample.snapshot is not None else None
    _add_vendor_figures(document, vendor, sample.extras)
    return document


def retained_peak_payload(retained: RetainedPeaks) -> RetainedPeakDoc:
    """The ``retained`` part of the peak document: the server's own history."""
    report = retained.sessions
    peak = report.peak_hour
    return {
        "since": retained.since.isoformat(),
        "until": retained.until.isoformat(),
        "visibility": "full" if retained.visibility == "full" else "restricted",
        "hours": [
            {"hour": h.hour, "samples": h.samples, "max": h.max, "average": h.average, "p95": h.p95}
            for h in report.hours
        ],
        "peak_hour": None if peak is None else peak.hour,
        "peak_day": None if report.peak_day is None else report.peak_day.isoformat(),
        "peak_day_hour": report.peak_day_hour,
        "peak_connections": report.peak_connections,
        "wlm_apex": None
        if retained.wlm_apex is None
        else [
            {
                "service_class": a.service_class,
                "hour": a.hour.isoformat(),
                "max_slots": a.max_slots,
                "slots": a.slots,
            }
            for a in retained.wlm_apex
        ],
    }


def peak_payload(report: PeakReport, alias: str, days: int) -> PeakDoc:
    """The JSON document of ``--action=peak --format=json`` (see docs/json.md)."""
    peak = report.peak_hour
    return {
        "schema": SCHEMAS["peak"],
        "alias": alias,
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
