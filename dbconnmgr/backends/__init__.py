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
from dbconnmgr.backends.mysql import MySQLBackend
from dbconnmgr.backends.postgresql import PostgreSQLBackend, time_limit_settings
from dbconnmgr.backends.redshift import RedshiftBackend
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.exceptions import UnknownDatabaseAlias, UnsupportedDatabase

BACKENDS: dict[str, type[ConnectionBackend]] = {
    PostgreSQLBackend.vendor: PostgreSQLBackend,
    MySQLBackend.vendor: MySQLBackend,
    RedshiftBackend.vendor: RedshiftBackend,
}

__all__ = [
    "BACKENDS",
    "ConnectionBackend",
    "capabilities_of",
    "get_backend",
    "private_backend",
    "time_limit_settings",
    "working_backend",
]


def capabilities_of(vendor: str) -> Capabilities:
    """The capabilities of ``vendor``'s backend (a bare declaration for an unknown one)."""
    backend = BACKENDS.get(vendor)
    return backend.capabilities if backend else Capabilities(display_name=vendor)


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


def private_backend(
    using: str = "default", *, time_limit: float | None = None
) -> ConnectionBackend:
    """A backend on a private, unpooled copy of ``using``'s connection settings.

    The copy connects on first use and never takes a slot of the application's pool; the
    caller closes it (``backend.connection.close()``). With ``time_limit`` (seconds), each
    statement on it gives up after that long, waiting for a lock included
    (``statement_timeout`` and ``lock_timeout``, appended last so they win over the
    project's own ``options``): a reader that runs every interval must not stall.

    Raises:
        UnknownDatabaseAlias, UnsupportedDatabase: as :func:`get_backend`.
    """
    backend = get_backend(using)
    connection = backend.connection
    options = {k: v for k, v in (connection.settings_dict.get("OPTIONS") or {}).items()}
    options.pop("pool", None)
    # Behind PgBouncer (transaction mode), pg_stat_activity is read on the server directly.
    server_url = direct_server_url(using)
    if server_url is not None:
        options.pop("prepare_threshold", None)
    if time_limit is not None:
        options = type(backend).time_limited_options(options, time_limit)
    clone = connection.copy()
    clone.settings_dict["OPTIONS"] = options
    if server_url is not None:
        clone.settings_dict.update(server_settings(server_url))
    return type(backend)(using, clone)


def direct_server_url(using: str) -> str | None:
    """``DBCONNMGR["PGBOUNCER"][using]["SERVER"]``: the server behind the alias's PgBouncer."""
    from dbconnmgr.app_settings import pgbouncer_setting

    setting = pgbouncer_setting(using)
    return setting.server if setting is not None else None


def server_settings(url: str) -> dict[str, object]:
    """NAME, USER, PASSWORD, HOST and PORT of a postgres:// URL, for a settings dict."""
    import environ

    config = environ.Env.db_url_config(url)
    keys = ("NAME", "USER", "PASSWORD", "HOST", "PORT")
    return {key: config[key] for key in keys if key in config}


@contextmanager
def working_backend(
    using: str = "default", *, separate: bool = False
) -> Iterator[ConnectionBackend]:
    """The backend a one-shot command or an action should read and act through.

    A pooled alias (``OPTIONS["pool"]``), or any alias with ``separate``, gets a private,
    unpooled copy of the connection, closed on exit (on the direct server URL when the
    alias points at PgBouncer, ``DBCONNMGR["PGBOUNCER"][using]["SERVER"]``): a command
    must neither wait for nor occupy a slot of the application's pool (an unreachable
    server would otherwise cost the pool's whole timeout), and an action must not reopen
    a pool whose connections it may then select. Other aliases use Django's connection as it is.
    """
    backend = get_backend(using)
    options = backend.connection.settings_dict.get("OPTIONS") or {}
    if not separate and not options.get("pool") and direct_server_url(using) is None:
        yield backend
        return
    private = private_backend(using)
    try:
        yield private
    finally:
        private.connection.close()
