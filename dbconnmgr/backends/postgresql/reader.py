"""PostgreSQL backend: pg_stat_get_activity(), pg_settings, pg_database and pg_roles.

The statements are in :mod:`.sql`, their rows by name in :mod:`.rows`, psycopg's facts
(errors, pids, time limits) in :mod:`.driver`; this module sends them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from dbconnmgr.backends.base import ConnectionBackend, gc_paused
from dbconnmgr.backends.postgresql import driver, sql
from dbconnmgr.backends.postgresql import rows as rows_
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.snapshot import ClientCount, Snapshot
from dbconnmgr.core.termination import Candidate, Criteria, Selection, ServerAnswer
from dbconnmgr.exceptions import ServerUnavailable
from dbconnmgr.internals import quiet_pipeline_exit


class PostgreSQLBackend(ConnectionBackend):
    """Connection snapshots of a PostgreSQL server (tested on 15 and 18)."""

    vendor = "postgresql"
    capabilities = Capabilities(
        display_name="PostgreSQL",
        can_terminate=True,
        can_terminate_atomically=True,
        can_cancel=True,
        has_reserved_slots=True,
        reports_lock_waits=True,
        reports_visibility=True,
        counts_refused_connections=False,
        full_visibility_grant="pg_read_all_stats (or pg_monitor)",
        postgresql_info=True,
    )

    @staticmethod
    def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
        """See :func:`.driver.classify_error`."""
        return driver.classify_error(exc, alias)

    @classmethod
    def is_driver_error(cls, exc: BaseException) -> bool:
        """psycopg's errors reach :meth:`_raw_connection` unwrapped by Django."""
        return isinstance(exc, psycopg.Error)

    @classmethod
    def driver_pid(cls, raw: Any) -> int | None:
        """See :func:`.driver.driver_pid`."""
        return driver.driver_pid(raw)

    def snapshot(self) -> Snapshot:
        """Read every client backend and the server's limits in one round trip."""
        # The rows and the tuples built from them hold no cycle: the collector has nothing
        # to find in them (backends.base.gc_paused; 1,000 rows are 16,000 objects).
        with gc_paused():
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        params = {"query_limit": sql.QUERY_TEXT_LIMIT}
        with self._raw_connection() as raw:
            limits_cursor = raw.cursor()
            rows_cursor = raw.cursor()
            if psycopg.Pipeline.is_supported():
                # An outage mid-pipeline is classified and reported once: psycopg's own
                # warning about the pipeline's failing exit would only repeat it.
                with quiet_pipeline_exit() as quiet, raw.pipeline() as pipeline:
                    quiet(pipeline)
                    limits_cursor.execute(sql.LIMITS_SQL)
                    rows_cursor.execute(sql.ACTIVITY_SQL, params)
            else:  # libpq < 14: two round trips, same result
                limits_cursor.execute(sql.LIMITS_SQL)
                rows_cursor.execute(sql.ACTIVITY_SQL, params)
            first = limits_cursor.fetchone()
            rows = rows_cursor.fetchall()
        assert first is not None  # a SELECT without FROM always returns its row
        return self._build(rows_.LimitsRow._make(first), rows)

    @contextmanager
    def _raw_connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The psycopg connection under Django's wrapper, errors classified.

        Django's cursor() connects (or takes a pooled connection) and checks thread sharing;
        the statements then go straight to psycopg so they can share one pipeline.
        """
        with self._errors_classified(), self.connection.cursor():
            yield self.connection.connection

    def _build(self, first: rows_.LimitsRow, rows: Sequence[Sequence[Any]]) -> Snapshot:
        return Snapshot(
            alias=self.alias,
            vendor=self.vendor,
            taken_at=first.taken_at,
            limits=rows_.server_limits(first),
            connections=rows_.connections(rows, first.database_names, first.role_names),
            own_pid=first.own_pid,
            visibility="full" if first.reader_sees_all else "restricted",
            visibility_grant=self.capabilities.full_visibility_grant,
        )

    @classmethod
    def time_limited_options(cls, options: dict[str, Any], seconds: float) -> dict[str, Any]:
        """See :func:`.driver.time_limited_options`."""
        return driver.time_limited_options(options, seconds)

    @classmethod
    def limit_transaction(cls, cursor: Any, seconds: float) -> None:
        """``statement_timeout`` and ``lock_timeout`` for the open transaction only."""
        for name, ms in driver.time_limit_settings(seconds).items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, str(ms)])

    def count_client_connections(self) -> ClientCount:
        """Count client backends (the reading one excluded) and read the slot limits in one
        short statement."""
        with self._cursor() as cursor:
            cursor.execute(sql.CLIENT_COUNT_SQL)
            count, max_connections, su_reserved, reserved = cursor.fetchone()
        return ClientCount(
            client_connections=count,
            max_connections=max_connections,
            usable_connections=max(0, max_connections - su_reserved - reserved),
        )

    def select_for_termination(self, criteria: Criteria) -> Selection:
        """Read the client backends matching ``criteria``, oldest state change first."""
        with self._cursor() as cursor:
            self._fresh_activity(cursor)
            cursor.execute(sql.SELECT_FOR_TERMINATION_SQL, sql.criteria_params(criteria))
            rows = cursor.fetchall()
        return rows_.selection(rows)

    def terminate(
        self, criteria: Criteria, candidates: Sequence[Candidate]
    ) -> dict[int, ServerAnswer]:
        """One statement: re-check every candidate and signal those that still match
        (pg_cancel_backend instead of pg_terminate_backend when ``criteria.signal`` is
        ``cancel``)."""
        if not candidates:
            return {}
        params = sql.criteria_params(criteria)
        params["pids"] = [c.pid for c in candidates]
        params["starts"] = [c.backend_start for c in candidates]
        statement = sql.CANCEL_SQL if criteria.signal == "cancel" else sql.TERMINATE_SQL
        with self._cursor() as cursor:
            self._fresh_activity(cursor)
            cursor.execute(statement, params)
            rows = cursor.fetchall()
        return {
            pid: ServerAnswer(pid=pid, outcome=outcome, state=state, state_seconds=seconds)
            for pid, outcome, state, seconds in rows
        }

    def _running(self, cursor: Any, candidates: Sequence[Candidate], *, queries: bool) -> set[int]:
        """The candidates still in pg_stat_activity (with ``queries``: still in the active
        state they were selected in)."""
        self._fresh_activity(cursor)
        statement = sql.QUERY_STILL_RUNNING_SQL if queries else sql.STILL_RUNNING_SQL
        cursor.execute(statement, sql.running_params(candidates))
        return {pid for (pid,) in cursor.fetchall()}

    def _fresh_activity(self, cursor: Any) -> None:
        """pg_stat_activity is read once per transaction: inside atomic(), drop that copy."""
        if self.connection.in_atomic_block:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
