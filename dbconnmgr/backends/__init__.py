"""Vendor backends: the only modules that contain SQL.

:func:`get_backend` picks the backend for a Django database alias.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.connection import ConnectionDoesNotExist

from dbconnmgr.backends.base import ConnectionBackend, setup_error
from dbconnmgr.backends.postgresql import PostgreSQLBackend
from dbconnmgr.exceptions import UnknownDatabaseAlias, UnsupportedDatabase

BACKENDS: dict[str, type[ConnectionBackend]] = {PostgreSQLBackend.vendor: PostgreSQLBackend}

__all__ = ["BACKENDS", "ConnectionBackend", "get_backend", "working_backend"]


def get_backend(alias: str = "default") -> ConnectionBackend:
    """Return the backend for ``alias``.

    Raises:
        UnknownDatabaseAlias: ``alias`` is not in ``settings.DATABASES``.
        UnsupportedDatabase: the alias uses an engine without a dbconnmgr backend.
    """
    try:
        connection = connections[alias]
        vendor = connection.vendor
    except ImproperlyConfigured as exc:  # unknown ENGINE, missing driver
        raise setup_error(exc, alias) from None
    except ConnectionDoesNotExist:
        known = ", ".join(sorted(connections.settings)) or "none"
        raise UnknownDatabaseAlias(
            f"unknown database alias {alias!r} (configured: {known})"
        ) from None
    backend = BACKENDS.get(vendor)
    if backend is None:
        supported = ", ".join(sorted(BACKENDS))
        raise UnsupportedDatabase(
            f"database alias {alias!r} uses the {connection.vendor} backend, which dbconnmgr "
            f"does not support yet (supported: {supported})"
        )
    return backend(alias, connection)


@contextmanager
def working_backend(
    using: str = "default", *, separate: bool = False
) -> Iterator[ConnectionBackend]:
    """The backend a one-shot command or an action should read and act through.

    A pooled alias (``OPTIONS["pool"]``), or any alias with ``separate``, gets a private,
    unpooled copy of the connection, closed on exit: a command must neither wait for nor
    occupy a slot of the application's pool (an unreachable server would otherwise cost
    the pool's whole timeout), and an action must not reopen a pool whose connections it
    may then select. Other aliases use Django's connection as it is.
    """
    backend = get_backend(using)
    connection = backend.connection
    options = connection.settings_dict.get("OPTIONS") or {}
    if not separate and not options.get("pool"):
        yield backend
        return
    clone = connection.copy()
    clone.settings_dict["OPTIONS"] = {k: v for k, v in options.items() if k != "pool"}
    try:
        yield type(backend)(using, clone)
    finally:
        clone.close()
