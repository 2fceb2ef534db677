"""PostgreSQL: the reader (SQL and row builders) and its driver helpers."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbconnmgr.backends.postgresql.reader import (
        _PIPELINE_NOISE,
        PostgreSQLBackend,
        classify_error,
        time_limit_settings,
    )

__all__ = ["_PIPELINE_NOISE", "PostgreSQLBackend", "classify_error", "time_limit_settings"]


def __getattr__(name: str) -> Any:
    # Lazy: ``dbconnmgr.backends.postgresql.settings`` is imported from a project's settings.py,
    # before Django is set up; importing this package for it must not load the reader
    # (django.db, the driver).
    if name in __all__:
        reader = importlib.import_module(f"{__name__}.reader")
        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
