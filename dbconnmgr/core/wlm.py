"""Query queues (Amazon Redshift's WLM): findings from the queues a snapshot carries.

Connections and query slots are different limits: a cluster far from its connection limit
can still make queries wait, because each WLM queue runs only as many at once as it has
slots. A backend that reads queues puts them in ``Snapshot.extras["wlm"]`` (the
``redshift`` key of the JSON documents, docs/json.md); these checks read that plain data.
Pure: no I/O, no settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["WLM_THRESHOLD_DEFAULTS", "wlm_findings"]

#: THRESHOLDS keys of the two checks (merged into dbconnmgr.core.health's defaults).
WLM_THRESHOLD_DEFAULTS: dict[str, Any] = {
    # Queries waiting in WLM queues for a slot, every queue together.
    "WLM_QUEUED_WARNING": 1,
    "WLM_QUEUED_CRITICAL": None,
    # Seconds a queue has been at its slot count, known from its longest-waiting query
    # (it queued because every slot was taken, and still waits).
    "WLM_SATURATED_WARNING": 60,
    "WLM_SATURATED_CRITICAL": 300,
}


def wlm_findings(
    wlm: Mapping[str, Any], thresholds: Mapping[str, Any]
) -> list[tuple[str, int, str, dict[str, Any]]]:
    """The ``wlm_queued`` and ``wlm_saturated`` checks, as (code, level, message, data)
    with level 0 ok, 1 warning, 2 critical (the caller makes them Findings).

    Without the queues (``visible`` false: their views are superuser-only) one ok finding
    says they were not read: connection figures stay valid, queueing is simply unknown to
    this reader, which is not a fault of the server.
    """
    if not wlm.get("visible"):
        return [
            (
                "wlm_queued",
                0,
                "WLM queues not read: their system views are visible to superusers only",
                {"visible": False},
            )
        ]
    queues = list(wlm.get("queues") or ())
    queued = sum(int(q.get("queued") or 0) for q in queues)
    warn, crit = thresholds.get("WLM_QUEUED_WARNING"), thresholds.get("WLM_QUEUED_CRITICAL")
    level = _level(queued, warn, crit)
    waiting = [q for q in queues if int(q.get("queued") or 0) > 0]
    where = ", ".join(f"{q['name']} ({q['queued']})" for q in waiting)
    message = (
        f"{queued} quer{'y' if queued == 1 else 'ies'} waiting for a WLM slot: {where}"
        if queued
        else "no query waiting for a WLM slot"
    )
    findings = [
        (
            "wlm_queued",
            level,
            message + _thresholds_text(warn, crit, ""),
            {"queued_queries": queued, "warning": warn, "critical": crit},
        )
    ]
    swarn = thresholds.get("WLM_SATURATED_WARNING")
    scrit = thresholds.get("WLM_SATURATED_CRITICAL")
    saturated = []
    for q in queues:
        slots = q.get("slots")
        if slots is None or int(q.get("queued") or 0) == 0:
            continue  # automatic WLM has no fixed slot count; a queue with no wait is not full
        if int(q.get("slots_in_use") or 0) >= int(slots):
            saturated.append((float(q.get("longest_queued_seconds") or 0.0), q))
    saturated.sort(key=lambda item: -item[0])
    longest = saturated[0][0] if saturated else 0.0
    slevel = _level(longest, swarn, scrit) if saturated else 0
    if saturated:
        seconds, queue = saturated[0]
        smessage = (
            f"WLM queue {queue['name']} (service class {queue['service_class']}) at its "
            f"{queue['slots']} slots for at least {seconds:.0f}s (its oldest queued query "
            "waits that long); more connections would not run more queries"
        )
    else:
        smessage = "no WLM queue at its slot count with queries waiting"
    findings.append(
        (
            "wlm_saturated",
            slevel,
            smessage + _thresholds_text(swarn, scrit, "s"),
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
                "warning": swarn,
                "critical": scrit,
            },
        )
    )
    return findings


def _level(value: float, warning: float | None, critical: float | None) -> int:
    if critical is not None and value >= critical:
        return 2
    if warning is not None and value >= warning:
        return 1
    return 0


def _thresholds_text(warning: float | None, critical: float | None, unit: str) -> str:
    parts = []
    if warning is not None:
        parts.append(f"warning at {warning:g}{unit}")
    if critical is not None:
        parts.append(f"critical at {critical:g}{unit}")
    return "; " + ", ".join(parts) if parts else ""
