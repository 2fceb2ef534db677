"""Every JSON document dbconnmgr writes is built through here (no rich import: the JSON
path stays light): status, health, monitor, peak, budget and termination.

The pure builders live in :mod:`dbconnmgr.core.builders` and are re-exported here; only the
two that need the shell are written here: :func:`health_payload` (the engine's
capabilities) and :func:`peak_payload` (Django's current time zone). Each document is
declared once in :mod:`dbconnmgr.core.documents` and listed in docs/json.md.
"""

from __future__ import annotations

from typing import cast

from django.utils import timezone

from dbconnmgr.backends import capabilities_of
from dbconnmgr.core.builders import (
    add_vendor_figures,
    budget_payload,
    connection_brief,
    criteria_payload,
    iso_or_none,
    local_close_payload,
    nagios_perfdata,
    pgbouncer_payload,
    sample_payload,
    server_info,
    status_payload,
    termination_payload,
)
from dbconnmgr.core.documents import SCHEMAS, FindingDoc, HealthDoc, PeakDoc
from dbconnmgr.core.health import Report
from dbconnmgr.core.samples import PeakReport

__all__ = [
    "budget_payload",
    "connection_brief",
    "criteria_payload",
    "health_payload",
    "local_close_payload",
    "nagios_perfdata",
    "peak_payload",
    "pgbouncer_payload",
    "sample_payload",
    "server_info",
    "status_payload",
    "termination_payload",
]


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
    if vendor and capabilities_of(vendor).postgresql_info:
        document["postgresql_info"] = info
    add_vendor_figures(document, vendor, snapshot.extras if snapshot else None)
    if report.pooler is not None:
        document["pgbouncer"] = pgbouncer_payload(report.pooler)
    return document


def peak_payload(report: PeakReport, alias: str, days: int) -> PeakDoc:
    """The JSON document of ``--action=peak --format=json`` (see docs/json.md)."""
    peak = report.peak_hour
    return {
        "schema": SCHEMAS["peak"],
        "alias": alias,
        "days": days,
        "time_zone": timezone.get_current_timezone_name(),
        "samples": report.samples,
        "first": iso_or_none(report.first),
        "last": iso_or_none(report.last),
        "hours": [
            {"hour": h.hour, "samples": h.samples, "max": h.max, "average": h.average, "p95": h.p95}
            for h in report.hours
        ],
        "peak_hour": None if peak is None else peak.hour,
        "peak_day": None if report.peak_day is None else report.peak_day.isoformat(),
        "peak_day_hour": report.peak_day_hour,
        "peak_connections": report.peak_connections,
        "peak_at": iso_or_none(report.peak_at),
    }
