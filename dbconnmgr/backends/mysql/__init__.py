"""MySQL / MariaDB: the reader (SQL and row builders) and its driver helpers."""

from dbconnmgr.backends.mysql.reader import (
    QUERY_TEXT_LIMIT,
    MySQLBackend,
    _connections,
    _thread_columns,
    classify_error,
    time_limit_options,
)

__all__ = [
    "QUERY_TEXT_LIMIT",
    "MySQLBackend",
    "_connections",
    "_thread_columns",
    "classify_error",
    "time_limit_options",
]
