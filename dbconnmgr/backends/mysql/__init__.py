"""MySQL / MariaDB: the reader (SQL and row builders) and its driver helpers."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    # Lazy: ``dbconnmgr.backends.mysql.settings`` is imported from a project's settings.py,
    # before Django is set up; importing this package for it must not load the reader
    # (django.db, the driver).
    if name in __all__:
        reader = importlib.import_module(f"{__name__}.reader")
        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
