"""PostgreSQL: the reader (SQL and row builders) and its driver helpers."""

from dbconnmgr.backends.postgresql.reader import (
    _PIPELINE_NOISE,
    PostgreSQLBackend,
    classify_error,
    time_limit_settings,
)

__all__ = ["_PIPELINE_NOISE", "PostgreSQLBackend", "classify_error", "time_limit_settings"]
