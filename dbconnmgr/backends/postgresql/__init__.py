"""PostgreSQL: the reader (SQL and row builders) and its driver helpers."""

from dbconnmgr.backends.postgresql.reader import (
    PostgreSQLBackend,
    classify_error,
    time_limit_settings,
)

__all__ = ["PostgreSQLBackend", "classify_error", "time_limit_settings"]
