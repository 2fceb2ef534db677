"""Vendor backends: the only modules that contain SQL.

:func:`get_backend` picks the backend for a Django database alias.
"""

from __future__ import annotations

from django.db import connections
from django.utils.connection import ConnectionDoesNotExist

from dbconnmgr.backends.base import ConnectionBackend
from dbconnmgr.backends.postgresql import PostgreSQLBackend
from dbconnmgr.exceptions import UnknownDatabaseAlias, UnsupportedDatabase

BACKENDS: dict[str, type[ConnectionBackend]] = {PostgreSQLBackend.vendor: PostgreSQLBackend}

__all__ = ["BACKENDS", "ConnectionBackend", "get_backend"]


def get_backend(alias: str = "default") -> ConnectionBackend:
    """Return the backend for ``alias``.

    Raises:
        UnknownDatabaseAlias: ``alias`` is not in ``settings.DATABASES``.
        UnsupportedDatabase: the alias uses an engine without a dbconnmgr backend.
    """
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        known = ", ".join(sorted(connections.settings)) or "none"
        raise UnknownDatabaseAlias(
            f"unknown database alias {alias!r} (configured: {known})"
        ) from None
    backend = BACKENDS.get(connection.vendor)
    if backend is None:
        supported = ", ".join(sorted(BACKENDS))
        raise UnsupportedDatabase(
            f"database alias {alias!r} uses the {connection.vendor} backend, which dbconnmgr "
            f"does not support yet (supported: {supported})"
        )
    return backend(alias, connection)
