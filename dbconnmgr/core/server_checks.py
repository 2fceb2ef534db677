"""The judging of a server snapshot: one function per check of
:data:`dbconnmgr.core.checks.CHECKS`, a snapshot and thresholds in, findings out.

Pure: no I/O, no Django.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dbconnmgr.core.findings import Finding, FindingCode, Severity
from dbconnmgr.core.snapshot import Connection, Snapshot
from dbconnmgr.core.thresholds import Thresholds, _fmt, level, level_low, limits_text

__all__ = [
    "SESSIONS_LISTED",
    "idle_in_transaction_finding",
    "idle_ratio_finding",
    "limit_utilization_findings",
    "lock_waits_finding",
    "long_query_finding",
    "long_transaction_finding",
    "refused_finding",
    "session_brief",
    "utilization_finding",
    "visibility_finding",
]

#: Sessions listed per finding in ``data["sessions"]``.
SESSIONS_LISTED = 10


def utilization_finding(snapshot: Snapshot, t: Thresholds) -> Finding:
    limits = snapshot.limits
    binding = snapshot.binding_limit()
    total, usable = binding.connections, binding.limit
    free = binding.free
    percent = binding.percent
    slots = {
        "server": "usable slots",
        "database": f"the connection limit of database {snapshot.database}",
        "role": f"the connection limit of role {limits.current_user}",
    }[binding.scope]
    used = f"{total} of {usable} {slots} in use ({percent}%)"
    warn_pct, crit_pct = t.utilization_warning, t.utilization_critical
    rules = [
        (
            "percent",
            level(percent, warn_pct, crit_pct),
            limits_text("at", warn_pct, crit_pct, "%"),
            warn_pct,
            crit_pct,
        ),
        (
            "count",
            level(snapshot.total_connections, t.connections_warning, t.connections_critical),
            limits_text("at", t.connections_warning, t.connections_critical, " connections"),
            t.connections_warning,
            t.connections_critical,
        ),
        (
            "free",
            level_low(free, t.free_slots_warning, t.free_slots_critical),
            limits_text("at", t.free_slots_warning, t.free_slots_critical, " free"),
            t.free_slots_warning,
            t.free_slots_critical,
        ),
    ]
    configured = [r for r in rules if r[3] is not None or r[4] is not None] or rules[:1]
    severity = Severity.worst(r[1] for r in configured)
    # Name every rule that reached the worst severity (all of them when ok).
    triggered = [r for r in configured if r[1] is severity]
    rule, _, _, warning, critical = triggered[0]
    said = "; ".join(r[2] for r in triggered if r[2])
    message = f"{used}; {said}" if said else used
    if severity is not Severity.OK and any(r[0] == "free" for r in triggered):
        message = f"only {max(free, 0)} usable slot(s) left: {message}"
    return Finding(
        "utilization",
        severity,
        message,
        {
            "total_connections": snapshot.total_connections,
            "usable_connections": limits.usable_connections,
            "max_connections": limits.max_connections,
            "free_connections": free,
            "utilization_percent": percent,
            "limited_by": binding.scope,
            "rule": rule,
            "rules": [r[0] for r in triggered],
            "warning": warning,
            "critical": critical,
        },
    )


def limit_utilization_findings(snapshot: Snapshot, t: Thresholds, scope: str) -> list[Finding]:
    """CONNECTION LIMIT of databases (``scope="database"``) or roles (``"role"``), against
    the percentage thresholds.

    PostgreSQL does not apply these limits to superusers but counts their sessions, so the
    count is every client backend of the database (or role).
    """
    findings: list[Finding] = []
    warn, crit = t.utilization_warning, t.utilization_critical
    caps = snapshot.limits.database_limits if scope == "database" else snapshot.limits.role_limits
    key: Callable[[Connection], str | None] = _database_of if scope == "database" else _user_of
    code: FindingCode = "database_utilization" if scope == "database" else "role_utilization"
    for name, cap in sorted(caps.items()):
        used = sum(1 for c in snapshot.others() if key(c) == name)
        if cap <= 0 or used == 0:
            continue
        percent = round(used * 100.0 / cap, 1)
        severity = level(percent, warn, crit)
        findings.append(
            Finding(
                code,
                severity,
                f"{scope} {name}: {used} of its {cap} connections in use ({percent}%); "
                + limits_text("at", warn, crit, "%"),
                {
                    scope: name,
                    "connections": used,
                    "limit": cap,
                    "utilization_percent": percent,
                    "warning": warn,
                    "critical": crit,
                },
                subject=name,
            )
        )
    return findings


def _database_of(conn: Connection) -> str | None:
    return conn.database


def _user_of(conn: Connection) -> str | None:
    return conn.user


def idle_ratio_finding(snapshot: Snapshot, t: Thresholds) -> Finding:
    others = snapshot.others()
    idle = sum(1 for c in others if c.state == "idle")
    total = len(others)
    minimum = t.idle_ratio_min_connections or 0
    percent = round(idle * 100.0 / total, 1) if total else 0.0
    warn, crit = t.idle_ratio_warning, t.idle_ratio_critical
    data = {
        "idle_connections": idle,
        "connections": total,
        "idle_percent": percent,
        "min_connections": minimum,
        "warning": warn,
        "critical": crit,
    }
    if total < minimum:
        return Finding(
            "idle_ratio",
            Severity.OK,
            f"{idle} of {total} connections idle; not judged below {minimum} connections",
            data,
        )
    severity = level(percent, warn, crit)
    return Finding(
        "idle_ratio",
        severity,
        f"{idle} of {total} connections idle ({percent}%); "
        + limits_text("above", warn, crit, "%"),
        data,
    )


def _exempt(conn: Connection, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(conn.application_name, p) for p in patterns)


def session_brief(conn: Connection, seconds: float | None) -> dict[str, Any]:
    """A session as findings and JSON reports show it: never its query text or client address."""
    return {
        "pid": conn.pid,
        "user": conn.user,
        "application_name": conn.application_name,
        "database": conn.database,
        "state": conn.state,
        "seconds": None if seconds is None else round(seconds, 1),
    }


def _age_finding(
    code: FindingCode,
    what: str,
    snapshot: Snapshot,
    t: Thresholds,
    prefix: str,
    candidates: Iterable[Connection],
    age_of: Callable[[Connection], float | None],
    ok_text: str,
) -> Finding:
    warn, crit = t.pair(prefix)
    exempt = t.exempt_applications
    aged = sorted(
        (
            (age, conn)
            for conn in candidates
            if (age := age_of(conn)) is not None and not _exempt(conn, exempt)
        ),
        key=lambda item: -item[0],
    )
    longest = aged[0][0] if aged else 0.0
    severity = level(longest, warn, crit) if aged else Severity.OK
    threshold = crit if severity is Severity.CRITICAL else warn
    over = [(a, c) for a, c in aged if threshold is not None and a >= threshold]
    limits = limits_text("after", warn, crit, "s")
    if severity is Severity.OK:
        message = f"{ok_text}; {limits}" if limits else f"{ok_text} (thresholds off)"
    else:
        top = over[0][1]
        limit = longest if threshold is None else threshold  # not OK: a threshold was met
        message = (
            f"{len(over)} {what} longer than {_fmt(limit)}s, the longest "
            f"{longest:.0f}s (pid {top.pid}, {top.application_name or '(none)'}); {limits}"
        )
    return Finding(
        code,
        severity,
        message,
        {
            "count": len(over),
            "longest_seconds": round(longest, 1) if aged else None,
            "sessions": [session_brief(c, a) for a, c in over[:SESSIONS_LISTED]],
            "warning": warn,
            "critical": crit,
            "exempt_applications": list(exempt),
        },
    )


def idle_in_transaction_finding(snapshot: Snapshot, t: Thresholds) -> Finding:
    return _age_finding(
        "idle_in_transaction",
        "session(s) idle in transaction",
        snapshot,
        t,
        "IDLE_IN_TRANSACTION",
        (c for c in snapshot.others() if c.is_idle_in_transaction),
        lambda c: c.state_seconds,
        "no session idle in transaction too long",
    )


def long_transaction_finding(snapshot: Snapshot, t: Thresholds) -> Finding:
    return _age_finding(
        "long_transaction",
        "transaction(s) open",
        snapshot,
        t,
        "TRANSACTION_AGE",
        snapshot.others(),
        lambda c: c.transaction_seconds,
        "no transaction open too long",
    )


def long_query_finding(snapshot: Snapshot, t: Thresholds) -> Finding:
    return _age_finding(
        "long_query",
        "query(ies) running",
        snapshot,
        t,
        "QUERY_AGE",
        (c for c in snapshot.others() if c.state == "active"),
        lambda c: c.query_seconds,
        "no query running too long",
    )


def lock_waits_finding(snapshot: Snapshot, t: Thresholds) -> Finding:
    warn, crit = t.lock_wait_warning, t.lock_wait_critical
    by_pid = {c.pid: c for c in snapshot.connections}
    waiting = sorted(
        (c for c in snapshot.others() if c.is_waiting_on_lock),
        key=lambda c: -(c.query_seconds or c.state_seconds or 0.0),
    )
    sessions = []
    blockers: dict[int, str] = {}
    longest = 0.0
    for conn in waiting:
        # A waiting backend is active: the time since its statement started bounds the wait.
        seconds = conn.query_seconds if conn.query_seconds is not None else conn.state_seconds
        longest = max(longest, seconds or 0.0)
        blocked_by = []
        for pid in conn.blocking_pids:
            blocker = by_pid.get(pid)
            app = blocker.application_name if blocker and blocker.visible else None
            blockers[pid] = "(unknown)" if app is None else (app or "(none)")
            blocked_by.append(
                {
                    "pid": pid,
                    "application_name": app,
                    "user": blocker.user if blocker else None,
                    "state": blocker.state if blocker else None,
                }
            )
        entry = session_brief(conn, seconds)
        entry["blocked_by"] = blocked_by
        sessions.append(entry)
    severity = level(longest, warn, crit) if waiting else Severity.OK
    limits = limits_text("after", warn, crit, "s")
    if not waiting:
        message = "no session waiting on a lock"
    else:
        who = ", ".join(f"pid {pid} ({app})" for pid, app in sorted(blockers.items()))
        message = (
            f"{len(waiting)} session(s) waiting on locks, the longest {longest:.0f}s"
            + (f", blocked by {who}" if who else "")
            + (f"; {limits}" if limits else "")
        )
    return Finding(
        "lock_waits",
        severity,
        message,
        {
            "count": len(waiting),
            "longest_seconds": round(longest, 1) if waiting else None,
            "blocking_pids": sorted(blockers),
            "sessions": sessions[:SESSIONS_LISTED],
            "warning": warn,
            "critical": crit,
        },
    )


def refused_finding(snapshot: Snapshot, since_last: int | None, full: int | None) -> Finding:
    """WARNING when the server refused connection attempts since the last sample (clients
    got errors although a snapshot may look fine now); CRITICAL when it says they were
    refused because it was full, or when it is full now."""
    total = int(snapshot.extras.get(snapshot.counters.refused or "") or 0)
    data = {"refused_connections": since_last, "refused_full": full, "refused_since_start": total}
    if since_last is None:
        return Finding(
            "refused_connections",
            Severity.OK,
            f"{total} connection attempt(s) refused or aborted since the server started "
            "(no earlier sample to compare)",
            data,
        )
    if since_last > 0 or (full or 0) > 0:
        is_full = (full or 0) > 0 or snapshot.free_connections == 0
        return Finding(
            "refused_connections",
            Severity.CRITICAL if is_full else Severity.WARNING,
            f"{max(since_last, full or 0)} connection attempt(s) refused since the last sample "
            + (
                "while the server was full (max_connections)"
                if is_full
                else "(server full, bad credentials or handshake timeouts)"
            )
            + f"; {total} since it started",
            data,
        )
    return Finding(
        "refused_connections", Severity.OK, "no connection refused since the last sample", data
    )


def visibility_finding(snapshot: Snapshot) -> Finding:
    data = {
        "visibility": snapshot.visibility,
        "hidden_connections": snapshot.hidden_connections,
        "current_user": snapshot.limits.current_user,
    }
    if snapshot.visibility == "full":
        return Finding("visibility", Severity.OK, "every session is visible", data)
    grant = snapshot.visibility_grant or "the privilege to read every session"
    return Finding(
        "visibility",
        Severity.UNKNOWN,
        f"restricted visibility: role {snapshot.limits.current_user} cannot see the state of "
        f"{snapshot.hidden_connections} session(s) of other roles, so idle, idle-in-transaction "
        f"and lock figures may be incomplete; grant it {grant}",
        data,
    )
