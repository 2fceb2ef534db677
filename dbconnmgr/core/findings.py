"""Severities and findings: what a health check says, as plain data.

Severities carry the Nagios plugin exit codes (0 ok, 1 warning, 2 critical, 3 unknown).
The worst finding decides a report's status, ranked ``ok < warning < unknown < critical``
(compare with :attr:`Severity.rank`, not with ``<`` on the values): *unknown* means "we
could not see everything", which is worse than a known warning, while a critical finding
measured on what we *could* see (the total count of connections is exact even when their
states are hidden) must not be masked by it.

Pure: no I/O, no Django.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

__all__ = ["Finding", "FindingCode", "Severity"]

#: Every code a finding can carry. :data:`dbconnmgr.core.checks.CHECKS` declares each check
#: behind one (tests/test_health_declaration.py holds the two equal); ``settings`` is the
#: HTTP endpoint's finding for invalid ``DBCONNMGR`` settings, which no check produces.
FindingCode = Literal[
    "utilization",
    "database_utilization",
    "role_utilization",
    "idle_ratio",
    "idle_in_transaction",
    "long_transaction",
    "long_query",
    "lock_waits",
    "visibility",
    "refused_connections",
    "server_full",
    "server_unreachable",
    "authentication_failed",
    "configuration_error",
    "server_error",
    "pgbouncer_waiting",
    "pgbouncer_maxwait",
    "pgbouncer_saturation",
    "pgbouncer_server_connections",
    "pgbouncer_unavailable",
    "settings",
]


class Severity(IntEnum):
    """How bad a finding is. The value is the Nagios plugin exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        """``ok``, ``warning``, ``critical`` or ``unknown``."""
        return self.name.lower()

    @property
    def rank(self) -> int:
        """Order of badness: ok 0, warning 1, unknown 2, critical 3."""
        return _RANK[self]

    @classmethod
    def worst(cls, severities: Iterable[Severity]) -> Severity:
        """The worst of ``severities`` by :attr:`rank` (OK when empty)."""
        return max(severities, key=lambda s: s.rank, default=cls.OK)

    @classmethod
    def from_label(cls, label: str) -> Severity:
        """``"warning"`` -> ``Severity.WARNING``.

        Raises:
            ValueError: not one of the four labels.
        """
        try:
            return cls[label.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown severity {label!r} (expected ok, warning, critical or unknown)"
            ) from None


_RANK = {Severity.OK: 0, Severity.WARNING: 1, Severity.UNKNOWN: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class Finding:
    """The result of one check.

    Attributes:
        code: stable identifier of the check (``utilization``, ``idle_in_transaction``...).
        severity: how bad it is.
        message: one line for a person.
        data: the numbers behind it (JSON-serialisable; never query text or client
            addresses).
        subject: what the check is about when one code covers several things (the database
            of ``database_utilization``, the role of ``role_utilization``); empty otherwise.
    """

    code: FindingCode
    severity: Severity
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    subject: str = ""

    @property
    def key(self) -> str:
        """Identity for alert cooldowns: ``code`` or ``code:subject``."""
        return f"{self.code}:{self.subject}" if self.subject else self.code

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "code": self.code,
            "subject": self.subject,
            "severity": self.severity.label,
            "message": self.message,
            "data": self.data,
        }
