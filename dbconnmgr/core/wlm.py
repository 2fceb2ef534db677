"""Query queues (Amazon Redshift's WLM): the ``wlm_queued`` and ``wlm_saturated`` findings.

Connections and query slots are different limits: a cluster far from its connection limit
can still make queries wait, because each WLM queue runs only as many at once as it has
slots. A backend that reads queues (``capabilities.reports_query_queues``) puts them in
``Snapshot.extras["wlm"]`` (the ``redshift`` key of the JSON documents, docs/json.md);
these checks read that plain data. Pure: no I/O, no settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbconnmgr.core.findings import Finding, Severity
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.core.thresholds import Thresholds, level, limits_text

__all__ = ["queued_finding", "queues_of", "saturated_finding"]


def queues_of(snapshot: Snapshot) -> Mapping[str, Any] | None:
    """The snapshot's WLM document (``visible``, ``queues``, ``queued_queries``,
    ``query_slots``; docs/json.md), or None for an engine without query queues."""
    wlm = snapshot.extras.get("wlm")
    return wlm if isinstance(wlm, Mapping) else None


def queued_finding(snapshot: Snapshot, t: Thresholds) -> list[Finding]:
    """Queries waiting for a WLM slot, every queue together.

    Without the queues (``visible`` false: their views are superuser-only) one ok finding
    says they were not read: the connection figures stay valid, and queueing is unknown to
    this reader, not a fault of the server.
    """
    wlm = queues_of(snapshot)
    if wlm is None:
        return []
    if not wlm.get("visible"):
        return [
            Finding(
                "wlm_queued",
                Severity.OK,
                "WLM queues not read: their system views are visible to superusers only",
                {"visible": False},
            )
        ]
    queues = list(wlm.get("queues") or ())
    queued = sum(int(q.get("queued") or 0) for q in queues)
    where = ", ".join(f"{q['name']} ({q['queued']})" for q in queues if int(q.get("queued") or 0))
    message = (
        f"{queued} quer{'y' if queued == 1 else 'ies'} waiting for a WLM slot: {where}"
        if queued
        else "no query waiting for a WLM slot"
    )
    limits = limits_text("at", t.wlm_queued_warning, t.wlm_queued_critical, "")
    return [
        Finding(
            "wlm_queued",
            level(queued, t.wlm_queued_warning, t.wlm_queued_critical),
            f"{message}; {limits}" if limits else message,
            {
                "queued_queries": queued,
                "warning": t.wlm_queued_warning,
                "critical": t.wlm_queued_critical,
            },
        )
    ]


def saturated_finding(snapshot: Snapshot, t: Thresholds) -> list[Finding]:
    """A queue with every slot taken and queries waiting: for as long as its oldest queued
    query has waited (it queued because no slot was free, and still waits)."""
    wlm = queues_of(snapshot)
    if wlm is None or not wlm.get("visible"):
        return []
    saturated = []
    for q in wlm.get("queues") or ():
        slots = q.get("slots")
        if slots is None or int(q.get("queued") or 0) == 0:
            continue  # automatic WLM has no fixed slot count; a queue with no wait is not full
        if int(q.get("slots_in_use") or 0) >= int(slots):
            saturated.append((float(q.get("longest_queued_seconds") or 0.0), q))
    saturated.sort(key=lambda item: -item[0])
    limits = limits_text("at", t.wlm_saturated_warning, t.wlm_saturated_critical, "s")
    if saturated:
        seconds, queue = saturated[0]
        severity = level(seconds, t.wlm_saturated_warning, t.wlm_saturated_critical)
        message = (
            f"WLM queue {queue['name']} (service class {queue['service_class']}) at its "
            f"{queue['slots']} slots for at least {seconds:.0f}s (its oldest queued query "
            "waits that long); more connections would not run more queries"
        )
    else:
        severity, message = Severity.OK, "no WLM queue at its slot count with queries waiting"
    return [
        Finding(
            "wlm_saturated",
            severity,
            f"{message}; {limits}" if limits else message,
            {
                "queues": [
                    {
                        "service_class": q["service_class"],
                        "name": q["name"],
                        "slots": q["slots"],
                        "saturated_seconds": round(s, 1),
                    }
                    for s, q in saturated
                ],
                "warning": t.wlm_saturated_warning,
                "critical": t.wlm_saturated_critical,
            },
        )
    ]
