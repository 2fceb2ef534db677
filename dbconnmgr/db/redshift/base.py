"""``ENGINE = "dbconnmgr.db.redshift"``: Django's PostgreSQL backend, for Amazon Redshift.

Redshift speaks PostgreSQL's protocol: psycopg connects to it. What changes from
``dbconnmgr.db.postgresql`` (the connector gate and counted failures included):

- ``vendor`` is ``redshift``: dbconnmgr reads the alias through its Redshift backend
  (STV_SESSIONS..., docs/redshift.md), never through ``pg_stat_activity``.
- Django refuses a PostgreSQL server older than 14 when it connects; Redshift reports
  PostgreSQL 8.0.2, so that check is skipped.
- ``OPTIONS["node_type"]`` and ``OPTIONS["max_connections"]`` are the cluster's connection
  limit as dbconnmgr counts it (Redshift does not show it): kept in the settings, never
  sent to the server.
- ``OPTIONS["statement_timeout"]`` (milliseconds) is set with ``SET statement_timeout``
  once connected: Redshift's configuration reference has the parameter, and no page
  documents the startup packet's ``options`` that PostgreSQL reads it from.

Only dbconnmgr's reads were tested, against an emulation on PostgreSQL 18; Django's ORM on a
real cluster (DDL, sequences, introspection) is not (docs/redshift.md).
"""

from __future__ import annotations

from typing import Any

from dbconnmgr.db.postgresql import base

__all__ = ["LIMIT_OPTIONS", "DatabaseWrapper"]

#: OPTIONS keys dbconnmgr reads and psycopg must not see.
LIMIT_OPTIONS = ("node_type", "max_connections")
_SESSION_OPTIONS = ("statement_timeout",)


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's PostgreSQL wrapper for Amazon Redshift (vendor ``redshift``)."""

    vendor = "redshift"
    display_name = "Amazon Redshift"

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        for key in (*LIMIT_OPTIONS, *_SESSION_OPTIONS):
            params.pop(key, None)
        return params

    def check_database_version_supported(self) -> None:
        """Redshift reports PostgreSQL 8.0.2; Django's minimum (14) does not apply."""

    def init_connection_state(self) -> None:
        super().init_connection_state()
        timeout = self.settings_dict["OPTIONS"].get("statement_timeout")
        if timeout is not None and self.connection is not None:
            with self.connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout TO {int(timeout)}")
