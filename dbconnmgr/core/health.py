"""Health evaluation: a snapshot plus thresholds in, findings with severities out.

Pure functions, no I/O: the same :class:`Report` feeds ``--action=health``,
:func:`dbconnmgr.check_connection_health`, the HTTP endpoint, ``/metrics``, the monitor and
the alerts. The checks are declared once in :mod:`dbconnmgr.core.checks`; severities and
findings are :mod:`dbconnmgr.core.findings`, thresholds :mod:`dbconnmgr.core.thresholds`
(all re-exported here).

Severities carry the Nagios plugin exit codes (0 ok, 1 warning, 2 critical, 3 unknown).
The worst finding decides a report's status, ranked ``ok < warning < unknown < critical``
(compare with :attr:`Severity.rank`, not with ``<`` on the values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbconnmgr.core.checks import (
    FAILURE_CODES,
    POOLER_CODES,
    POOLER_FAILURE_CODES,
    SESSIONS_LISTED,
    SNAPSHOT_CODES,
    Inputs,
    Judges,
    run_checks,
    session_brief,
)
from dbconnmgr.core.findings import Finding, FindingCode, Severity
from dbconnmgr.core.pooler import PoolerSnapshot, PoolerUnavailable
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.core.thresholds import (
    DEFAULT_THRESHOLDS,
    THRESHOLD_KINDS,
    Thresholds,
    resolve_thresholds,
    threshold_errors,
)
from dbconnmgr.exceptions import ServerUnavailable

__all__ = [
    "DEFAULT_THRESHOLDS",
    "SESSIONS_LISTED",
    "THRESHOLD_KINDS",
    "Finding",
    "FindingCode",
    "Report",
    "Severity",
    "Thresholds",
    "evaluate",
    "evaluate_unavailable",
    "resolve_thresholds",
    "session_brief",
    "threshold_errors",
]

#: What PgBouncer's console said, why it could not be read, or None without PgBouncer.
Pooler = PoolerSnapshot | PoolerUnavailable | None


@dataclass(frozen=True)
class Report:
    """Every finding for one database alias at one moment.

    Attributes:
        alias: the Django database alias.
        status: the worst finding's severity (ranked by :attr:`Severity.rank`).
        findings: every check that ran, ``ok`` ones included, worst first.
        snapshot: what was evaluated; None when the server could not be read.
        pooler: what PgBouncer's console said in front of the alias
            (:class:`dbconnmgr.core.pooler.PoolerSnapshot`), why it could not be read
            (:class:`~dbconnmgr.core.pooler.PoolerUnavailable`), or None when no PgBouncer is
            configured.
    """

    alias: str
    status: Severity
    findings: tuple[Finding, ...]
    snapshot: Snapshot | None
    pooler: Pooler = None

    @property
    def problems(self) -> tuple[Finding, ...]:
        """Findings that are not ok."""
        return tuple(f for f in self.findings if f.severity is not Severity.OK)

    @property
    def evaluated_codes(self) -> frozenset[FindingCode]:
        """Codes of the checks this report speaks for (from the declaration,
        :data:`dbconnmgr.core.checks.CHECKS`).

        Every report vouches for the checks of a server that could not be read (``server_*``,
        ``configuration_error``...: absent means over); one with a snapshot also for every
        snapshot check, one without leaves their last result standing. Likewise for
        PgBouncer: a console that was read vouches for every ``pgbouncer_*`` check, one that
        could not be read only for ``pgbouncer_unavailable``.
        """
        codes = FAILURE_CODES
        if self.snapshot is not None:
            codes |= SNAPSHOT_CODES
        if isinstance(self.pooler, PoolerSnapshot):
            codes |= POOLER_CODES | POOLER_FAILURE_CODES
        elif isinstance(self.pooler, PoolerUnavailable):
            codes |= POOLER_FAILURE_CODES
        return codes

    def summary(self) -> str:
        """One line: the status and the worst problem (or that all is well)."""
        problems = self.problems
        if not problems:
            return f"{self.status.label.upper()}: {self.alias}: every check passed"
        counts = ", ".join(
            f"{n} {sev.label}"
            for sev in (Severity.CRITICAL, Severity.UNKNOWN, Severity.WARNING)
            if (n := sum(1 for f in problems if f.severity is sev))
        )
        return f"{self.status.label.upper()}: {self.alias}: {counts} - {problems[0].message}"


def evaluate(
    snapshot: Snapshot,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    refused_connections: int | None = None,
    refused_full: int | None = None,
    *,
    pooler: Pooler = None,
) -> Report:
    """Evaluate every check on ``snapshot``.

    Args:
        snapshot: what :func:`dbconnmgr.take_snapshot` returned.
        thresholds: :class:`Thresholds`, or THRESHOLDS keys overriding the defaults (None:
            the defaults). The core never reads settings: pass
            ``dbconnmgr.app_settings.thresholds()`` for the project's.
        refused_connections: connection attempts the server refused since the previous
            sample (:attr:`Sample.refused_connections`), on engines that count them; None
            when there is no previous sample.
        refused_full: of those, the ones refused because the server was full, where the
            engine counts them apart (:attr:`Sample.refused_full`).
        pooler: PgBouncer's console in front of the alias (its checks are added), why it
            could not be read, or None.

    Raises:
        ValueError: invalid thresholds.
    """
    inputs = Inputs(
        resolve_thresholds(thresholds),
        snapshot=snapshot,
        refused_connections=refused_connections,
        refused_full=refused_full,
        pooler=pooler,
    )
    return _report(snapshot.alias, inputs, ("snapshot", "pooler", "pooler_failure"))


def evaluate_unavailable(
    exc: ServerUnavailable,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    *,
    pooler: Pooler = None,
) -> Report:
    """A report for a server that could not be read.

    ``full`` and ``reserved`` (no slot left), ``unreachable`` and ``timeout`` are critical:
    the application cannot get a connection either. ``auth``, ``setup`` and ``other`` are
    unknown: the check's own credentials or setup failed, which says nothing about the
    server's slots. With ``pooler``, PgBouncer's checks are added (``thresholds`` are theirs).

    Raises:
        ValueError: invalid thresholds.
    """
    inputs = Inputs(resolve_thresholds(thresholds), problem=exc, pooler=pooler)
    return _report(exc.alias, inputs, ("failure", "pooler", "pooler_failure"))


def _report(alias: str, inputs: Inputs, judges: tuple[Judges, ...]) -> Report:
    findings = run_checks(inputs, judges)
    ordered = sorted(findings, key=lambda f: -f.severity.rank)  # stable: check order kept
    return Report(
        alias=alias,
        status=Severity.worst(f.severity for f in findings),
        findings=tuple(ordered),
        snapshot=inputs.snapshot,
        pooler=inputs.pooler,
    )
