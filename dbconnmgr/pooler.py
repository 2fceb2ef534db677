"""The PgBouncer part of status and health: read the console configured for an alias.

``DBCONNMGR["PGBOUNCER"][alias]`` names the console (app_settings.pgbouncer_setting); the
console is read by :mod:`dbconnmgr.backends.pgbouncer` and judged by the pure
:mod:`dbconnmgr.core.pooler`. A console that cannot be read is a finding (UNKNOWN), never an
exception: the server part still reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dbconnmgr.app_settings import pgbouncer_setting
from dbconnmgr.core.health import Report, Severity, resolve_thresholds
from dbconnmgr.core.pooler import (
    PoolerSnapshot,
    PoolerUnavailable,
    evaluate_pooler,
    pooler_unavailable_finding,
)

__all__ = ["read_pooler", "with_pooler"]


def read_pooler(alias: str) -> PoolerSnapshot | PoolerUnavailable | None:
    """What the console in front of ``alias`` says, why it could not be read, or None when
    no PgBouncer is configured for ``alias``.

    Raises:
        InvalidSetting: ``DBCONNMGR["PGBOUNCER"]`` is malformed.
    """
    setting = pgbouncer_setting(alias)
    if setting is None:
        return None
    from dbconnmgr.backends.pgbouncer import read_console

    return read_console(alias, setting.console)


def with_pooler(report: Report, thresholds: Mapping[str, Any] | None = None) -> Report:
    """``report`` with the PgBouncer findings of its alias added (itself when none is set).

    Raises:
        InvalidSetting: ``DBCONNMGR["PGBOUNCER"]`` is malformed.
    """
    pooler = read_pooler(report.alias)
    if pooler is None:
        return report
    if isinstance(pooler, PoolerUnavailable):
        extra = [pooler_unavailable_finding(pooler)]
    else:
        usable = report.snapshot.limits.usable_connections if report.snapshot else None
        extra = evaluate_pooler(pooler, resolve_thresholds(thresholds), usable)
    findings = sorted([*report.findings, *extra], key=lambda f: -f.severity.rank)
    return dataclasses.replace(
        report,
        findings=tuple(findings),
        status=Severity.worst(f.severity for f in findings),
        pooler=pooler,
    )
