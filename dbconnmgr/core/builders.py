"""Every pure JSON document builder: status, health's ``server_info``, PgBouncer, monitor,
budget and termination (criteria, local close); :mod:`dbconnmgr.payloads` adds the two that
need the shell (health: the engine's capabilities; peak: Django's time zone) and re-exports
these, so every builder is reached through it.

Each document is declared once in :mod:`dbconnmgr.core.documents` and listed in docs/json.md;
the snapshot figures they carry come from :mod:`dbconnmgr.core.figures`. Pure: no Django,
so :meth:`~dbconnmgr.core.termination.TerminationReport.as_dict` and friends build here.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from dbconnmgr.core.budget import Budget
from dbconnmgr.core.documents import (
    SCHEMAS,
    BudgetDoc,
    CriteriaDoc,
    GroupDoc,
    LocalCloseDoc,
    MonitorDoc,
    PgBouncerDoc,
    ServerInfoDoc,
    SessionDoc,
    StatusDoc,
    TerminationDoc,
)
from dbconnmgr.core.figures import (
    BY_NAME,
    SERVER_INFO_KEYS,
    STATUS_KEYS,
    STATUS_SERVER_KEYS,
    STATUS_TAIL_KEYS,
    Figures,
)
from dbconnmgr.core.health import Report, session_brief
from dbconnmgr.core.pooler import PoolerSnapshot, PoolerUnavailable
from dbconnmgr.core.samples import Sample
from dbconnmgr.core.snapshot import Connection, Group, Snapshot

if TYPE_CHECKING:  # termination imports these builders for its as_dict(): types only here
    from dbconnmgr.core.termination import Criteria, LocalClose, TerminationReport


def _group_payload(groups: list[Group]) -> list[GroupDoc]:
    return [{"name": g.name, "connections": g.count, "by_state": g.by_state} for g in groups]


def connection_brief(conn: Connection | None, seconds: float | None) -> SessionDoc | None:
    """:func:`dbconnmgr.core.health.session_brief`, or None when there is no such session."""
    return None if conn is None else cast(SessionDoc, session_brief(conn, seconds))


def _with_sessions(figures: Figures, keys: tuple[str, ...]) -> dict[str, Any]:
    """``keys``' figures, each session's age followed by the session's brief."""
    document: dict[str, Any] = {}
    for key in keys:
        document[key] = figures[key]
        session = BY_NAME[key].session
        if session is not None:
            document[session.name] = connection_brief(*figures.session(session.name))
    return document


def add_vendor_figures(document: Any, vendor: str | None, figures: dict[str, Any] | None) -> None:
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
    figures = Figures.of(snapshot)
    document = cast(
        StatusDoc,
        {
            "schema": SCHEMAS["status"],
            "alias": snapshot.alias,
            "database": snapshot.database,
            "vendor": snapshot.vendor,
            "taken_at": snapshot.taken_at.isoformat(),
            "server": figures.pick(STATUS_SERVER_KEYS),
            **figures.pick(STATUS_KEYS),
            "by_state": snapshot.by_state(),
            "by_application": _group_payload(snapshot.by_application(limit)),
            "by_user": _group_payload(snapshot.by_user(limit)),
            "by_database": _group_payload(snapshot.by_database(limit)),
            "by_client": _group_payload(snapshot.by_client(limit)),
            **_with_sessions(figures, STATUS_TAIL_KEYS),
        },
    )
    add_vendor_figures(document, snapshot.vendor, snapshot.extras)
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


# -- health (server_info; the document itself is in dbconnmgr.payloads) ---------------------------
def server_info(snapshot: Snapshot | None) -> ServerInfoDoc:
    """The figures of ``check_connection_health()["server_info"]`` (None when down).

    ``utilization_percent`` is of the *usable* slots, the figure the thresholds use.
    """
    figures = Figures.unreachable() if snapshot is None else Figures.of(snapshot)
    return cast(ServerInfoDoc, {"reachable": figures.reachable, **figures.pick(SERVER_INFO_KEYS)})


def nagios_perfdata(report: Report, thresholds: dict[str, Any]) -> str:
    """Nagios performance data for the first line of ``--action=health``."""
    snapshot = report.snapshot
    if snapshot is None:
        return ""

    def num(value: Any) -> str:
        return "" if value is None else f"{value:g}"

    f = Figures.of(snapshot)
    return " ".join(
        [
            f"utilization={f['utilization_percent']:g}%;"
            f"{num(thresholds.get('UTILIZATION_WARNING'))};"
            f"{num(thresholds.get('UTILIZATION_CRITICAL'))};0;100",
            f"connections={f['total_connections']};"
            f"{num(thresholds.get('CONNECTIONS_WARNING'))};"
            f"{num(thresholds.get('CONNECTIONS_CRITICAL'))};0;{f['usable_connections']}",
            f"idle={f['idle_connections']}",
            f"idle_in_transaction={f['idle_in_transaction_connections']}",
            f"waiting={f['waiting_connections']}",
        ]
    )


# -- monitor (peak is in dbconnmgr.payloads: it needs the time zone) ------------------------------
def iso_or_none(value: datetime | None) -> str | None:
    """``value.isoformat()``, or None for no time (documents write null)."""
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
        "unreachable_since": iso_or_none(sample.unreachable_since),
        "recovered_from": iso_or_none(sample.recovered_from),
    }
    vendor = sample.snapshot.vendor if sample.snapshot is not None else None
    add_vendor_figures(document, vendor, sample.extras)
    return document


# -- budget and termination -----------------------------------------------------------------------
def budget_payload(
    budget: Budget,
    snapshot: Snapshot,
    usable_source: str,
    settings_pool_max_size: int | None,
    through_pgbouncer: list[str] | None = None,
) -> BudgetDoc:
    """The JSON document of ``--action=budget --format=json`` (see docs/json.md)."""
    limits = snapshot.limits
    return {
        "schema": SCHEMAS["budget"],
        "alias": snapshot.alias,
        "database": snapshot.database,
        "taken_at": snapshot.taken_at.isoformat(),
        "server": {
            "version": limits.version,
            "max_connections": limits.max_connections,
            # /2: both reserved settings together, not status's reserved_connections setting
            "reserved_slots": limits.superuser_reserved_connections + limits.reserved_connections,
            "usable_connections": limits.usable_connections,
        },
        "usable_connections": budget.usable_connections,
        "usable_source": usable_source,
        "total_connections": snapshot.total_connections,
        "settings_pool_max_size": settings_pool_max_size,
        "services": [
            {
                "name": line.service.name,
                "instances": line.service.instances,
                "processes": line.service.processes,
                "threads": line.service.threads,
                "pool_max_size": line.service.pool_max_size,
                "connections": line.service.demand,
                "safe_pool_max_size": line.safe_pool_max_size,
            }
            for line in budget.services
        ],
        "headroom": budget.headroom,
        "safety": budget.safety,
        "capacity": budget.capacity,
        "demand": budget.demand,
        "demand_with_headroom": budget.demand_with_headroom,
        "spare": budget.spare,
        "fits": budget.fits,
        "safe_pool_max_size": budget.safe_pool_max_size,
        "through_pgbouncer": through_pgbouncer,
    }


def criteria_payload(criteria: Criteria) -> CriteriaDoc:
    """The ``criteria`` object of the termination document (``database`` is
    :attr:`~dbconnmgr.core.termination.Criteria.database_name`)."""
    return {
        "states": list(criteria.states) if criteria.states is not None else None,
        "older_than_seconds": criteria.older_than,
        "application_name": criteria.application_name,
        "user": criteria.user,
        "database": criteria.database_name,
        "current_database_only": criteria.current_database_only,
        "current_user_only": criteria.current_user_only,
        "include_superusers": criteria.include_superusers,
        "signal": criteria.signal,
        "pids": list(criteria.only_pids) if criteria.only_pids is not None else None,
    }


def local_close_payload(local: LocalClose) -> LocalCloseDoc:
    """The ``local`` object of the termination document: what this process closed."""
    return {
        "connection_closed": local.connection_closed,
        "pool_closed": local.pool_closed,
        "pool_current_size": local.pool_current_size,
        "backend_pids": list(local.backend_pids),
    }


def termination_payload(report: TerminationReport) -> TerminationDoc:
    """The document of ``--action=close-idle|force-close|cancel --format=json`` and
    :meth:`~dbconnmgr.core.termination.TerminationReport.as_dict` (see docs/json.md)."""
    by_pid = {r.pid: r for r in report.results}
    return {
        "schema": SCHEMAS["termination"],
        "action": report.action,
        "alias": report.alias,
        "database": report.database,
        "taken_at": report.taken_at.isoformat(),
        "dry_run": report.dry_run,
        "executed": report.executed,
        "cancelled": report.cancelled,
        "performed_by": {
            "os_user": report.actor.os_user,
            "db_role": report.actor.db_role,
            "superuser": report.actor.is_superuser,
            "requested_by": report.actor.requested_by,
        },
        "criteria": criteria_payload(report.criteria),
        "counts": report.counts(),
        "selected": [
            {
                "pid": c.pid,
                "user": c.user,
                "application_name": c.application_name,
                "database": c.database,
                "client": c.client,
                "state": c.state,
                "state_seconds": None if c.state_seconds is None else round(c.state_seconds, 1),
                "superuser": c.is_superuser,
                "outcome": by_pid[c.pid].outcome,
                "reason": by_pid[c.pid].reason,
            }
            for c in report.selected
        ],
        "terminated": list(report.terminated),
        "queries_cancelled": list(report.pids("query_cancelled")),
        "not_terminated": [
            {"pid": r.pid, "outcome": r.outcome, "reason": r.reason} for r in report.not_terminated
        ],
        "hidden_connections": report.hidden,
        "findings": list(report.findings),
        "local": local_close_payload(report.local) if report.local is not None else None,
    }
