"""PostgreSQL's settings step: libpq options, server settings, the instrumented ENGINE.

Imported by :mod:`dbconnmgr.database_settings` from a project's ``settings.py``, before
Django is set up: no ``django.db``, no psycopg at import time (:func:`known_options`
asks psycopg when a system check calls it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from dbconnmgr.backends import registry
from dbconnmgr.backends.engine_settings import (
    DEFAULT_CONNECT_TIMEOUT,
    EngineSettings,
    Sources,
    first,
    set_option,
)

__all__ = [
    "DJANGO_OPTIONS",
    "INSTRUMENTED_ENGINE",
    "POSTGRES_ENGINES",
    "SERVER_SETTINGS_IN_URL",
    "SETTINGS",
    "append_server_options",
    "configure",
    "known_options",
    "libpq_application_name",
    "libpq_connection_options",
    "normalize",
]

#: Django's PostgreSQL backend plus the connector gate and explained pool errors.
INSTRUMENTED_ENGINE: Final = "dbconnmgr.db.postgresql"
_DJANGO_POSTGRESQL: Final = "django.db.backends.postgresql"
#: Django's, GIS's and the instrumented ENGINE (listed once, in the registry).
POSTGRES_ENGINES: Final = registry.engine("postgresql").engines
DEFAULT_KEEPALIVES_IDLE: Final = 60
DEFAULT_KEEPALIVES_INTERVAL: Final = 10
DEFAULT_KEEPALIVES_COUNT: Final = 5

# libpq keywords that take whole numbers (a URL gives them as strings).
INTEGER_OPTIONS: Final = (
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
)
#: Server settings that users put in the URL query as if they were libpq keywords; libpq
#: rejects them ("invalid connection option"), so they move into ``options``.
SERVER_SETTINGS_IN_URL: Final = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "search_path",
)
#: Keys of OPTIONS that Django's PostgreSQL backend or psycopg take besides libpq's.
DJANGO_OPTIONS: Final = frozenset(
    {
        "pool",
        "isolation_level",
        "assume_role",
        "server_side_binding",
        "prepare_threshold",
        "cursor_factory",
        "row_factory",
        "context",
        "autocommit",
    }
)


def append_server_options(existing: str | None, **server_settings: Any) -> str:
    """Append ``-c name=value`` for each server setting to a libpq ``options`` string.

    What is already there is kept as it is (it may carry ``search_path``, say), and a
    setting it already names is not added again: the project's explicit value wins.
    None values are skipped.

    >>> append_server_options("-c search_path=app", statement_timeout=30000)
    '-c search_path=app -c statement_timeout=30000'
    """
    parts = [existing.strip()] if existing and existing.strip() else []
    # PostgreSQL reads setting names case-insensitively, with "-" for "_".
    present = {
        name.lower().replace("-", "_")
        for name in re.findall(r"(?:-c\s*|--)([A-Za-z_.\-]+)\s*=", existing or "")
    }
    for name, value in server_settings.items():
        if value is None or name.lower() in present:
            continue
        text = str(value).replace("\\", "\\\\").replace(" ", "\\ ")
        parts.append(f"-c {name}={text}")
    return " ".join(parts)


def normalize(options: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Server settings given as URL parameters move into ``options`` (``-c name=value``)."""
    moved = {k: options.pop(k) for k in SERVER_SETTINGS_IN_URL if k in options}
    if moved:
        options["options"] = append_server_options(options.get("options"), **moved)


def libpq_application_name(options: dict[str, Any], src: Sources) -> None:
    """libpq's ``application_name``: the ``application_name`` keyword, else
    ``DB_APPLICATION_NAME``, else the ``service`` keyword (the URL's own stays then), with
    the management command after it (``web:migrate``): every engine that connects through
    libpq shares it."""
    # A management command says which after the name (``web:migrate``), so a migration's
    # sessions are not taken for the web workers'.
    from dbconnmgr.identity import with_command

    name = src.keywords.get("application_name") or src.text("DB_APPLICATION_NAME")
    if name:
        options["application_name"] = with_command(str(name))
    elif src.keywords.get("service"):
        options.setdefault("application_name", with_command(str(src.keywords["service"])))


def libpq_connection_options(options: dict[str, Any], src: Sources) -> None:
    """libpq's ``connect_timeout`` and TCP keepalives (on unless turned off), chosen by
    keyword, environment or URL: every engine that connects through libpq shares them."""
    set_option(
        options,
        "connect_timeout",
        src.whole("DB_CONNECT_TIMEOUT", "connect_timeout"),
        DEFAULT_CONNECT_TIMEOUT,
    )
    url_keepalives = options.get("keepalives")
    if first(
        src.boolean("DB_KEEPALIVES", "keepalives"),
        None if url_keepalives is None else bool(url_keepalives),
        True,
    ):
        options["keepalives"] = 1
        for key, var, fallback in (
            ("keepalives_idle", "DB_KEEPALIVES_IDLE", DEFAULT_KEEPALIVES_IDLE),
            ("keepalives_interval", "DB_KEEPALIVES_INTERVAL", DEFAULT_KEEPALIVES_INTERVAL),
            ("keepalives_count", "DB_KEEPALIVES_COUNT", DEFAULT_KEEPALIVES_COUNT),
        ):
            set_option(options, key, src.whole(var), fallback)
    else:
        options["keepalives"] = 0


def configure(config: dict[str, Any], options: dict[str, Any], src: Sources) -> None:
    """application_name, connect_timeout, keepalives, server timeouts.

    Each value: keyword > environment variable > URL query > default. The ENGINE stays
    Django's: ``database_config()`` swaps in :data:`INSTRUMENTED_ENGINE` only when asked
    (:attr:`EngineSettings.instrumented`).
    """
    libpq_application_name(options, src)
    libpq_connection_options(options, src)
    server = {
        "statement_timeout": src.whole("DB_STATEMENT_TIMEOUT", "statement_timeout", minimum=0),
        "idle_in_transaction_session_timeout": src.whole(
            "DB_IDLE_IN_TRANSACTION_TIMEOUT", "idle_in_transaction_session_timeout", minimum=0
        ),
    }
    merged = append_server_options(options.get("options"), **server)
    if merged:
        options["options"] = merged


@cache
def known_options() -> frozenset[str]:
    """Every key libpq (asked through psycopg) or Django's backend accepts in OPTIONS."""
    try:
        import psycopg

        libpq = {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()}
    except ImportError:  # pragma: no cover - psycopg 3 is a dependency
        libpq = set()
    return frozenset(libpq) | DJANGO_OPTIONS


SETTINGS: Final = EngineSettings(
    vendor="postgresql",
    schemes=frozenset({"postgres", "postgresql", "pgsql", "postgis"}),
    integer_options=INTEGER_OPTIONS,
    normalize=normalize,
    configure=configure,
    native_pool=True,
    pgbouncer=True,
    known_options=known_options,
    application_name=True,
    connect_timeout=True,
    # The same backend plus the connector gate, pool errors that explain themselves and
    # failures counted by cause (dbconnmgr/db/postgresql); vendor and features are Django's.
    instrumented=(_DJANGO_POSTGRESQL, INSTRUMENTED_ENGINE),
)
