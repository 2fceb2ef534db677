"""Vendor backends: the only modules that contain SQL, and the one door to them.

Each engine is a package (``backends/<engine>/``: reader, SQL, rows, driver) listed once in
:data:`dbconnmgr.backends.registry.ENGINES`. Callers ask here: :func:`get_backend` for an
alias, :data:`BACKENDS` / :func:`backend_class_of` for a class, :func:`capabilities_of`,
:func:`classify_error` by the alias's engine. Importing this package imports neither
Django's database layer nor a driver; an engine's reader is imported on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dbconnmgr.backends.base import ConnectionBackend, setup_error
from dbconnmgr.backends.registry import ENGINES, Engine, by_engine, by_vendor
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.exceptions import ServerUnavailable, UnknownDatabaseAlias, UnsupportedDatabase


class _Backends(Mapping[str, type[ConnectionBackend]]):
    """vendor -> backend class, each class imported when first looked up."""

    def __getitem__(self, vendor: str) -> type[ConnectionBackend]:
        engine = by_vendor(vendor)
        if engine is None:
            raise KeyError(vendor)
        return engine.backend()

    def __iter__(self) -> Iterator[str]:
        return (engine.vendor for engine in ENGINES)

    def __len__(self) -> int:
        return len(ENGINES)

    def __contains__(self, vendor: object) -> bool:  # no import to answer it
        return isinstance(vendor, str) and by_vendor(vendor) is not None


#: Every backend class by Django's ``connection.vendor``.
BACKENDS: Mapping[str, type[ConnectionBackend]] = _Backends()

__all__ = [
    "BACKENDS",
    "ConnectionBackend",
    "Engine",
    "backend_class_of",
    "capabilities_of",
    "classify_error",
    "engine_of",
    "get_backend",
    "private_backend",
    "working_backend",
]


def capabilities_of(vendor: str) -> Capabilities:
    """The capabilities of ``vendor``'s backend (a bare declaration for an unknown one)."""
    backend = BACKENDS.get(vendor)
    return backend.capabilities if backend else Capabilities(display_name=vendor)


def engine_of(alias: str) -> Engine | None:
    """The engine of ``alias``: by its ``ENGINE`` path, else by Django's ``vendor`` (a
    project's own wrapper of a supported engine); None when dbconnmgr reads no such engine
    or the alias is not configured (or its ENGINE cannot be loaded)."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    settings_dict = connections.settings.get(alias)
    if settings_dict is None:
        return None
    engine = by_engine(settings_dict.get("ENGINE"))
    if engine is not None:
        return engine
    try:
        return by_vendor(connections[alias].vendor)
    except ImproperlyConfigured:
        return None


def backend_class_of(alias: str) -> type[ConnectionBackend] | None:
    """The backend class of ``alias``'s engine (see :func:`engine_of`), or None."""
    engine = engine_of(alias)
    return engine.backend() if engine is not None else None


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """``exc`` as its alias's engine classifies it (``ConnectionBackend.classify_error``);
    ``exc`` itself for an alias dbconnmgr does not read."""
    backend = backend_class_of(alias)
    return backend.classify_error(exc, alias) if backend is not None else exc


def get_backend(alias: str = "default") -> ConnectionBackend:
    """Return the backend for ``alias``.

    Raises:
        UnknownDatabaseAlias: ``alias`` is not in ``settings.DATABASES``.
        UnsupportedDatabase: the alias uses an engine without a dbconnmgr backend.
    """
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections
    from django.utils.connection import ConnectionDoesNotExist

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
    engine = by_engine(connection.settings_dict.get("ENGINE")) or by_vendor(vendor)
    if engine is None:
        supported = ", ".join(sorted(BACKENDS))
        raise UnsupportedDatabase(
            f"database alias {alias!r} uses the {connection.vendor} backend, which dbconnmgr "
            f"does not support yet (supported: {supported})"
        )
    return engine.backend()(alias, connection)


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
