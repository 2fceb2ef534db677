"""psycopg against Amazon Redshift: what a driver error means (PostgreSQL's reading plus
Redshift's own refusal when full) and the pid of a connection. Imports no driver."""

from __future__ import annotations

from typing import Any

from dbconnmgr.backends.postgresql import driver as postgresql
from dbconnmgr.exceptions import ServerUnavailable


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """PostgreSQL's classification, plus Redshift's own refusal when the cluster is full
    (``connection limit "500" exceeded for non-bootstrap users``)."""
    lowered = str(exc).lower()
    if "connection limit" in lowered and "exceeded" in lowered:
        first_line = str(exc).strip().splitlines()[0]
        return ServerUnavailable(
            f"database {alias!r}: the cluster's connection limit is reached ({first_line})",
            kind="full",
            alias=alias,
            detail=first_line,
        )
    return postgresql.classify_error(exc, alias)


def driver_pid(raw: Any) -> int | None:
    """The server pid of a psycopg connection (as on PostgreSQL)."""
    return postgresql.driver_pid(raw)
