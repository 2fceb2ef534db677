"""Helpers for the project's ``settings.DATABASES``, read from the environment.

This module is imported from ``settings.py``, before Django is set up: it never touches
``django.conf.settings`` or the app registry. Typical use::

    from dbconnmgr.database_settings import database_config

    DATABASES = {"default": database_config(service="web")}

Every environment variable, the profiles and the precedence rules are documented in
docs/configuration.md. Precedence, highest first: a keyword argument, the dedicated
environment variable (``DB_MAX_CONNS``...), the ``DATABASE_URL`` query string, the profile.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import django
import environ
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "DEFAULT_PROFILE",
    "INSTRUMENTED_ENGINE",
    "PGBOUNCER_POOL_MODES",
    "POOL_ON_FULL_CHOICES",
    "POOL_ON_FULL_KEY",
    "POOL_SEEDS",
    "PROFILES",
    "REDSHIFT_ENGINE",
    "REDSHIFT_OPTIONS",
    "TRANSACTION_POOL_MODES",
    "PoolSeeds",
    "Profile",
    "append_server_options",
    "database_config",
    "normalize_database_settings",
    "pooling_available",
]


@dataclass(frozen=True, slots=True)
class Profile:
    """Defaults of one environment.

    Attributes:
        name: ``development``, ``staging``, ``production`` or ``high-load``.
        max_conns: connections per process (the pool's ``max_size``).
        conn_max_age: seconds a connection lives (the pool's ``max_lifetime``, or Django's
            ``CONN_MAX_AGE`` when pooling is off).
    """

    name: str
    max_conns: int
    conn_max_age: int


#: The runbook's environment profiles. ``high-load`` has *fewer* connections per process
#: than production on purpose: it is for fleets with many processes, where the server's
#: slots, not the pool, are the scarce resource.
PROFILES: Final[dict[str, Profile]] = {
    p.name: p
    for p in (
        Profile("development", max_conns=10, conn_max_age=180),
        Profile("staging", max_conns=20, conn_max_age=300),
        Profile("production", max_conns=25, conn_max_age=600),
        Profile("high-load", max_conns=15, conn_max_age=300),
    )
}

#: The profile used when neither ``profile=`` nor ``DB_PROFILE`` names one.
DEFAULT_PROFILE: Final = "production"

#: Defaults that do not vary by profile.
DEFAULT_CONNECT_TIMEOUT: Final = 5
DEFAULT_POOL_TIMEOUT: Final = 10.0
DEFAULT_MIN_CONNS: Final = 1
DEFAULT_KEEPALIVES_IDLE: Final = 60
DEFAULT_KEEPALIVES_INTERVAL: Final = 10
DEFAULT_KEEPALIVES_COUNT: Final = 5
#: The most connections per process a setting takes (PostgreSQL's largest max_connections).
MAX_CONNECTIONS: Final = 262_143

POSTGRES_ENGINES: Final = frozenset(
    {
        "django.db.backends.postgresql",
        "django.contrib.gis.db.backends.postgis",
        "dbconnmgr.db.postgresql",  # INSTRUMENTED_ENGINE: Django's, gated and counted
    }
)
MYSQL_ENGINES: Final = frozenset(
    {"django.db.backends.mysql", "django.contrib.gis.db.backends.mysql"}
)
#: Amazon Redshift through Django's PostgreSQL backend (docs/redshift.md): libpq options,
#: psycopg and Django's native pool as for PostgreSQL; vendor ``redshift``.
REDSHIFT_ENGINE: Final = "dbconnmgr.db.redshift"
#: What django-environ makes of a ``redshift://`` URL: django-redshift-backend, whose 5.0.0
#: declares django<5.2 and psycopg2 only, so it installs on neither supported stack.
_DJANGO_REDSHIFT_BACKEND: Final = "django_redshift_backend"
#: OPTIONS of a Redshift alias that are not libpq's: the cluster's connection limit
#: (``DB_REDSHIFT_NODE_TYPE`` / ``DB_REDSHIFT_MAX_CONNECTIONS``, ``?node_type=``...) and
#: ``statement_timeout`` (ms), which the ENGINE sets with SET once connected.
REDSHIFT_OPTIONS: Final = ("node_type", "max_connections", "statement_timeout")
#: MySQL's and MariaDB's default ``wait_timeout``: the server closes a connection idle longer.
DEFAULT_WAIT_TIMEOUT: Final = 28_800
#: A persistent MySQL connection is retired this many seconds before the server's
#: ``wait_timeout`` would close it under Django ("MySQL server has gone away").
WAIT_TIMEOUT_MARGIN: Final = 60

# Top-level keys django-environ leaves as strings when they come from the URL query.
_BOOLEAN_KEYS: Final = (
    "CONN_HEALTH_CHECKS",
    "ATOMIC_REQUESTS",
    "AUTOCOMMIT",
    "DISABLE_SERVER_SIDE_CURSORS",
)
# libpq keywords that take whole numbers (a URL gives them as strings).
_INTEGER_OPTIONS: Final = (
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
)
# Server settings that users put in the URL query as if they were libpq keywords; libpq
# rejects them ("invalid connection option"), so they move into ``options``.
SERVER_SETTINGS_IN_URL: Final = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "search_path",
)
_TRUE: Final = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE: Final = frozenset({"0", "false", "f", "no", "n", "off", ""})
_NONE: Final = frozenset({"none", "null"})


def pooling_available() -> bool:
    """True when Django's native pool can be used: Django >= 5.1, psycopg 3, psycopg_pool."""
    if django.VERSION < (5, 1):
        return False
    return (
        importlib.util.find_spec("psycopg") is not None
        and importlib.util.find_spec("psycopg_pool") is not None
    )


def database_config(
    env_var: str = "DATABASE_URL",
    *,
    profile: str | None = None,
    service: str | None = None,
    default: str | None = None,
    env: Mapping[str, str] | None = None,
    pool: bool | None = None,
    max_conns: int | None = None,
    min_conns: int | None = None,
    conn_max_age: int | None = None,
    pool_timeout: float | None = None,
    asgi: bool | None = None,
    application_name: str | None = None,
    connect_timeout: int | None = None,
    statement_timeout: int | None = None,
    idle_in_transaction_session_timeout: int | None = None,
    keepalives: bool | None = None,
    pgbouncer: str | None = None,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pool_recycle: int | None = None,
    pool_pre_ping: bool | None = None,
    pool_on_full: str | None = None,
    pool_max_waiting: int | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One ``DATABASES`` entry from ``DATABASE_URL`` and related environment variables.

    With pooling (the default on Django >= 5.1 with psycopg 3 and psycopg_pool), the
    connections per process (``DB_MAX_CONNS``) become the pool's ``max_size``, the lifetime
    (``CONN_MAX_AGE``) the pool's ``max_lifetime``, and Django's ``CONN_MAX_AGE`` is 0 as
    Django requires. Without pooling, ``CONN_MAX_AGE`` keeps connections persistent, except
    under ASGI where persistent connections leak (there it is always 0).

    Args:
        env_var: the variable holding the database URL (django-environ syntax).
        profile: ``development``, ``staging``, ``production`` or ``high-load``; else
            ``$DB_PROFILE``, else :data:`DEFAULT_PROFILE`.
        service: what runs with these settings (``web``, ``worker``...): the connections'
            ``application_name`` unless ``$DB_APPLICATION_NAME`` or ``application_name``
            is given.
        default: URL used when ``env_var`` is unset (else ImproperlyConfigured).
        env: the environment to read (default ``os.environ``); for tests.
        pool: use Django's native pool (``$DB_POOL``; default: when available).
        max_conns: connections per process, the pool's max_size (``$DB_MAX_CONNS``).
        min_conns: connections the pool keeps open (``$DB_MIN_CONNS``, default 1).
        conn_max_age: seconds a connection lives (``$CONN_MAX_AGE``); None with
            ``$CONN_MAX_AGE=none`` means forever (persistent mode only).
        pool_timeout: seconds a request waits for a pooled connection (``$DB_POOL_TIMEOUT``).
        asgi: the project is served over ASGI (``$DB_ASGI``): never persistent connections.
        application_name: overrides ``$DB_APPLICATION_NAME`` and ``service``.
        connect_timeout: seconds (``$DB_CONNECT_TIMEOUT``, default 5).
        statement_timeout: milliseconds (``$DB_STATEMENT_TIMEOUT``, default: none).
        idle_in_transaction_session_timeout: milliseconds
            (``$DB_IDLE_IN_TRANSACTION_TIMEOUT``, default: none).
        keepalives: TCP keepalives (``$DB_KEEPALIVES``, default on).
        pgbouncer: the URL points at PgBouncer in this ``pool_mode`` (``$DB_PGBOUNCER``:
            ``session``, ``transaction`` or ``statement``). PgBouncer is then the pool:
            Django's native pool is off. In ``transaction`` and ``statement`` mode a session
            is not kept between transactions, so server-side cursors are disabled
            (``DISABLE_SERVER_SIDE_CURSORS``) and no prepared statement is kept
            (``OPTIONS["prepare_threshold"] = None``).
        pool_size: SQLAlchemy's name: connections the pool keeps (``$DB_POOL_SIZE``,
            ``?pool_size=``): the pool's ``min_size``.
        max_overflow: connections above ``pool_size`` (``$DB_MAX_OVERFLOW``); the pool's
            ``max_size`` is ``pool_size + max_overflow``.
        pool_recycle: seconds a connection lives (``$DB_POOL_RECYCLE``): the pool's
            ``max_lifetime`` (``CONN_MAX_AGE`` without a pool).
        pool_pre_ping: check a connection before handing it out (``$DB_POOL_PRE_PING``):
            ``CONN_HEALTH_CHECKS``, which makes Django pass
            ``ConnectionPool.check_connection`` as the pool's ``check``.
        pool_on_full: ``queue`` (wait up to the pool timeout) or ``reject`` (fail at once)
            when every connection of the process is in use (``$DB_POOL_ON_FULL``).
        pool_max_waiting: requests that may queue before new ones fail at once
            (``$DB_POOL_MAX_WAITING``, psycopg_pool's ``max_waiting``; 0: no limit).
        **overrides: upper-case ``DATABASES`` keys set last (``OPTIONS`` is merged key by
            key, ``pool`` in it included).

    Returns:
        A dict for ``DATABASES["default"]``.

    Raises:
        ImproperlyConfigured: a missing URL or a variable that does not parse, with the
            variable's name and value in the message.
    """
    environment: Mapping[str, str] = os.environ if env is None else env
    reader = _Reader(environment)

    url = environment.get(env_var) or default
    if not url:
        raise ImproperlyConfigured(f"{env_var} is not set (and no default URL was given)")
    try:
        config = _redshift_engine(environ.Env.db_url_config(url), reader)
        config = normalize_database_settings(config)
    except (KeyError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"{env_var} is not a database URL django-environ reads: {exc}"
        ) from None
    except ImproperlyConfigured as exc:  # a query parameter that does not parse
        raise ImproperlyConfigured(f"{env_var}: {exc}") from None

    seeds = _pool_seeds(
        reader,
        config,
        env_var,
        keywords={
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
            "pool_recycle": pool_recycle,
            "pool_pre_ping": pool_pre_ping,
            "pool_on_full": pool_on_full,
            "pool_max_waiting": pool_max_waiting,
        },
        given={
            "DB_MAX_CONNS": ("max_conns", max_conns),
            "DB_MIN_CONNS": ("min_conns", min_conns),
            "CONN_MAX_AGE": ("conn_max_age", conn_max_age),
            "CONN_HEALTH_CHECKS": ("CONN_HEALTH_CHECKS", overrides.get("CONN_HEALTH_CHECKS")),
        },
    )

    chosen = profile or reader.text("DB_PROFILE") or DEFAULT_PROFILE
    if chosen not in PROFILES:
        known = ", ".join(PROFILES)
        raise ImproperlyConfigured(f"unknown database profile {chosen!r} (known: {known})")
    prof = PROFILES[chosen]

    is_redshift = config.get("ENGINE") == REDSHIFT_ENGINE
    is_postgres = config.get("ENGINE") in POSTGRES_ENGINES or is_redshift
    use_asgi = _first(reader.boolean("DB_ASGI", ("asgi", asgi)), False)
    pooler_mode = _pooler_mode(*reader._pick("DB_PGBOUNCER", ("pgbouncer", pgbouncer)))
    url_pool = (config.get("OPTIONS") or {}).get("pool")
    asked_pool = reader.boolean("DB_POOL", ("pool", pool))
    if pooler_mode and asked_pool:
        raise ImproperlyConfigured(
            f"DB_POOL with DB_PGBOUNCER={pooler_mode}: PgBouncer is the pool; a pool per "
            "process in front of it holds PgBouncer's clients idle (unset DB_POOL)"
        )
    use_pool = bool(
        _first(
            asked_pool,
            None if url_pool is None or pooler_mode else bool(url_pool),
            is_postgres and pooling_available() and not pooler_mode,
        )
    )
    if use_pool and not is_postgres:
        raise ImproperlyConfigured(
            f"DB_POOL: Django's native pool is for PostgreSQL, not {config.get('ENGINE')}"
        )
    if use_pool and not pooling_available():
        raise ImproperlyConfigured(
            "DB_POOL: pooling needs Django >= 5.1, psycopg 3 and psycopg_pool "
            "(pip install 'psycopg[binary,pool]')"
        )

    url_has_age = "CONN_MAX_AGE" in config
    url_age: int | None = config.pop("CONN_MAX_AGE", None)
    age_given, given_age = reader.age("CONN_MAX_AGE", ("conn_max_age", conn_max_age))
    if seeds.recycle is not None:
        age: int | None = seeds.recycle
    elif age_given:
        age = given_age
    elif url_has_age:
        age = url_age
    else:
        age = prof.conn_max_age

    config["CONN_HEALTH_CHECKS"] = _first(
        seeds.pre_ping,
        reader.boolean("CONN_HEALTH_CHECKS"),
        config.get("CONN_HEALTH_CHECKS"),
        True,
    )
    options: dict[str, Any] = dict(config.get("OPTIONS") or {})
    options.pop("pool", None)

    # Read (and so validated) whether or not the pool is on: a typo must not wait for the
    # day somebody turns pooling on.
    size = _first(
        seeds.max_size,
        reader.whole("DB_MAX_CONNS", ("max_conns", max_conns), maximum=MAX_CONNECTIONS),
        prof.max_conns,
    )
    floor = _first(
        seeds.min_size,
        reader.whole("DB_MIN_CONNS", ("min_conns", min_conns), minimum=0, maximum=MAX_CONNECTIONS),
        DEFAULT_MIN_CONNS,
    )
    wait = _first(seeds.timeout, DEFAULT_POOL_TIMEOUT)
    if use_pool:
        pool_options: dict[str, Any] = dict(url_pool) if isinstance(url_pool, dict) else {}
        pool_options.update(min_size=min(floor, size), max_size=size, timeout=wait)
        if age:  # None (forever) and 0 leave psycopg_pool's own max_lifetime (3600 s)
            pool_options["max_lifetime"] = float(age)
        if seeds.max_waiting is not None:
            pool_options["max_waiting"] = seeds.max_waiting
        options["pool"] = pool_options
        config["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
        config[POOL_ON_FULL_KEY] = seeds.on_full or "queue"
    else:
        for name, value in (
            (seeds.names.get("pool_on_full"), seeds.on_full),
            (seeds.names.get("pool_max_waiting"), seeds.max_waiting),
        ):
            if value is not None:
                raise ImproperlyConfigured(f"{name} needs the pool (DB_POOL is off)")
        config["CONN_MAX_AGE"] = 0 if use_asgi else age

    if config.get("ENGINE") == _DJANGO_POSTGRESQL:
        # The same backend plus the connector gate, pool errors that explain themselves and
        # failures counted by cause (dbconnmgr/db/postgresql); vendor and features are
        # Django's. ENGINE= in the keywords puts Django's back.
        config["ENGINE"] = INSTRUMENTED_ENGINE
    if is_postgres:
        # keyword > environment variable > URL query > default
        name = application_name or reader.text("DB_APPLICATION_NAME")
        if name:
            options["application_name"] = name
        elif service:
            options.setdefault("application_name", service)
        _set_option(
            options,
            "connect_timeout",
            reader.whole("DB_CONNECT_TIMEOUT", ("connect_timeout", connect_timeout)),
            DEFAULT_CONNECT_TIMEOUT,
        )
        url_keepalives = options.get("keepalives")
        if _first(
            reader.boolean("DB_KEEPALIVES", ("keepalives", keepalives)),
            None if url_keepalives is None else bool(url_keepalives),
            True,
        ):
            options["keepalives"] = 1
            for key, var, fallback in (
                ("keepalives_idle", "DB_KEEPALIVES_IDLE", DEFAULT_KEEPALIVES_IDLE),
                ("keepalives_interval", "DB_KEEPALIVES_INTERVAL", DEFAULT_KEEPALIVES_INTERVAL),
                ("keepalives_count", "DB_KEEPALIVES_COUNT", DEFAULT_KEEPALIVES_COUNT),
            ):
                _set_option(options, key, reader.whole(var), fallback)
        else:
            options["keepalives"] = 0
        if is_redshift:
            _redshift_session_options(
                options, reader, statement_timeout, idle_in_transaction_session_timeout
            )
    if is_postgres and not is_redshift:
        server = {
            "statement_timeout": reader.whole(
                "DB_STATEMENT_TIMEOUT", ("statement_timeout", statement_timeout), minimum=0
            ),
            "idle_in_transaction_session_timeout": reader.whole(
                "DB_IDLE_IN_TRANSACTION_TIMEOUT",
                ("idle_in_transaction_session_timeout", idle_in_transaction_session_timeout),
                minimum=0,
            ),
        }
        merged = append_server_options(options.get("options"), **server)
        if merged:
            options["options"] = merged

    if pooler_mode in TRANSACTION_POOL_MODES:
        # The next transaction may run on another server connection: nothing that lives
        # in a session (a WITH HOLD cursor, a prepared statement) may outlive one.
        config["DISABLE_SERVER_SIDE_CURSORS"] = True
        options["prepare_threshold"] = None

    if config.get("ENGINE") in MYSQL_ENGINES:
        _mysql_options(config, options, reader, connect_timeout, statement_timeout)

    config["OPTIONS"] = options
    for key, value in overrides.items():
        if key == "OPTIONS" and isinstance(value, Mapping):
            config["OPTIONS"] = {**config["OPTIONS"], **value}
        else:
            config[key] = value
    return config


#: PgBouncer pool modes that hand a server connection to another client between
#: transactions (or statements).
TRANSACTION_POOL_MODES: Final = frozenset({"transaction", "statement"})
PGBOUNCER_POOL_MODES: Final = ("session", "transaction", "statement")


def _pooler_mode(name: str, value: Any) -> str | None:
    """``DB_PGBOUNCER``: a PgBouncer pool_mode, or None (empty, ``none``, ``off``)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in {"", "none", "off", "false", "0", "no"}:
        return None
    if text not in PGBOUNCER_POOL_MODES:
        raise ImproperlyConfigured(
            f"{name} must be a PgBouncer pool_mode ({', '.join(PGBOUNCER_POOL_MODES)}) or "
            f"empty, got {value!r}"
        )
    return text


# -- pool settings in SQLAlchemy's names (issue 13) ----------------------------------------
# SQLAlchemy's create_engine() arguments are what most people know a pool by; each is also
# an environment variable and a URL query key, mapped onto psycopg_pool in one place here.

#: URL query key -> environment variable, for every pool setting in SQLAlchemy's names
#: (plus the connector gate). ``pool_timeout`` is the pre-existing ``DB_POOL_TIMEOUT``.
POOL_SEEDS: Final = {
    "pool_size": "DB_POOL_SIZE",
    "max_overflow": "DB_MAX_OVERFLOW",
    "pool_timeout": "DB_POOL_TIMEOUT",
    "pool_recycle": "DB_POOL_RECYCLE",
    "pool_pre_ping": "DB_POOL_PRE_PING",
    "pool_on_full": "DB_POOL_ON_FULL",
    "pool_max_waiting": "DB_POOL_MAX_WAITING",
}
#: What a full pool does with one more request: wait up to the timeout, or fail at once.
POOL_ON_FULL_CHOICES: Final = ("queue", "reject")
#: The top-level ``DATABASES`` key the instrumented engine reads the gate from (Django
#: ignores top-level keys it does not know; ``OPTIONS`` would reach libpq).
POOL_ON_FULL_KEY: Final = "POOL_ON_FULL"
#: Django's PostgreSQL backend plus the connector gate and explained pool errors.
INSTRUMENTED_ENGINE: Final = "dbconnmgr.db.postgresql"
_DJANGO_POSTGRESQL: Final = "django.db.backends.postgresql"
# Other environment variables that start with DB_POOL_ (a typo check must know them).
_OTHER_POOL_VARIABLES: Final[frozenset[str]] = frozenset()


@dataclass(frozen=True, slots=True)
class PoolSeeds:
    """The pool settings read in SQLAlchemy's names, None when not given.

    Attributes:
        min_size: ``pool_size``.
        max_size: ``pool_size + max_overflow``.
        timeout: ``pool_timeout`` (seconds).
        recycle: ``pool_recycle`` (seconds), the pool's ``max_lifetime``.
        pre_ping: ``pool_pre_ping``, Django's ``CONN_HEALTH_CHECKS``.
        on_full: ``queue`` or ``reject``.
        max_waiting: ``pool_max_waiting``.
        names: for each URL key read, the name it was read under (for error messages).
    """

    min_size: int | None
    max_size: int | None
    timeout: float | None
    recycle: int | None
    pre_ping: bool | None
    on_full: str | None
    max_waiting: int | None
    names: dict[str, str]


def _pool_seeds(
    reader: _Reader,
    config: dict[str, Any],
    env_var: str,
    *,
    keywords: Mapping[str, Any],
    given: Mapping[str, tuple[str, Any]],
) -> PoolSeeds:
    """Read the SQLAlchemy-named pool settings (keyword > variable > URL query).

    Pops them from ``config["OPTIONS"]`` (libpq would reject them). ``given`` names the
    settings they conflict with: variable -> (keyword, value).
    """
    options = config.setdefault("OPTIONS", {})
    url = {key: options.pop(key) for key in POOL_SEEDS if key in options}
    unknown = [
        f"{env_var} ?{key}" for key in options if key.startswith("pool_") or key == "max_overflow"
    ] + [
        var
        for var in reader.environment
        if var.startswith("DB_POOL_")
        and var not in POOL_SEEDS.values()
        and var not in _OTHER_POOL_VARIABLES
    ]
    if unknown:
        known = ", ".join(f"{key} ({var})" for key, var in POOL_SEEDS.items())
        typo = unknown[0].rsplit("?", 1)[-1]
        close = difflib.get_close_matches(typo, [*POOL_SEEDS, *POOL_SEEDS.values()], n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ImproperlyConfigured(f"unknown pool setting {unknown[0]} ({hint}known: {known})")

    names: dict[str, str] = {}

    def pick(key: str) -> tuple[str, Any]:
        var = POOL_SEEDS[key]
        if keywords.get(key) is not None:
            found = (key, keywords[key])
        elif reader.text(var) is not None:
            found = (var, reader.text(var))
        elif url.get(key) is not None:
            found = (f"{env_var} ?{key}", url[key])
        else:
            return var, None
        names[key] = found[0]
        return found

    def whole(key: str, minimum: int) -> int | None:
        name, value = pick(key)
        if value is None:
            return None
        return _parse_whole(name, value, minimum=minimum, maximum=MAX_CONNECTIONS)

    floor = whole("pool_size", 0)
    overflow = whole("max_overflow", 0)
    name, value = pick("pool_timeout")
    timeout = None if value is None else _parse_seconds(name, value)
    name, value = pick("pool_recycle")
    recycle = None if value is None else _parse_whole(name, value, minimum=1)
    name, value = pick("pool_pre_ping")
    pre_ping = None if value is None else _parse_bool(name, value)
    name, value = pick("pool_on_full")
    on_full = None if value is None else str(value).strip().lower()
    if on_full is not None and on_full not in POOL_ON_FULL_CHOICES:
        raise ImproperlyConfigured(f"{name} must be queue or reject, got {value!r}")
    max_waiting = whole("pool_max_waiting", 0)

    ceiling = None
    if overflow is not None and floor is None:
        raise ImproperlyConfigured(
            f"{names['max_overflow']} needs {POOL_SEEDS['pool_size']} "
            "(the pool's max_size is pool_size + max_overflow)"
        )
    if floor is not None:
        ceiling = floor + (overflow or 0)
        what = names["pool_size"] + (f" + {names['max_overflow']}" if overflow else "")
        if ceiling < 1:
            raise ImproperlyConfigured(f"{what} must be at least 1, got {ceiling}")
        if ceiling > MAX_CONNECTIONS:
            raise ImproperlyConfigured(f"{what} must be <= {MAX_CONNECTIONS}, got {ceiling}")
        _refuse_conflict(reader, given, "DB_MAX_CONNS", what, ceiling, parse=int)
        _refuse_conflict(reader, given, "DB_MIN_CONNS", names["pool_size"], floor, parse=int)
    if recycle is not None:
        _refuse_conflict(reader, given, "CONN_MAX_AGE", names["pool_recycle"], recycle, parse=int)
        if "CONN_MAX_AGE" in config and config["CONN_MAX_AGE"] != recycle:
            raise ImproperlyConfigured(
                f"{names['pool_recycle']}={recycle} conflicts with {env_var} ?conn_max_age="
                f"{config['CONN_MAX_AGE']}: set one of them"
            )
    if pre_ping is not None:
        _refuse_conflict(
            reader, given, "CONN_HEALTH_CHECKS", names["pool_pre_ping"], pre_ping,
            parse=lambda v: _parse_bool("CONN_HEALTH_CHECKS", v),
        )  # fmt: skip
        url_checks = config.get("CONN_HEALTH_CHECKS")
        if url_checks is not None and url_checks != pre_ping:
            raise ImproperlyConfigured(
                f"{names['pool_pre_ping']}={pre_ping} conflicts with {env_var} "
                f"?conn_health_checks={url_checks}: set one of them"
            )
    return PoolSeeds(floor, ceiling, timeout, recycle, pre_ping, on_full, max_waiting, names)


def _refuse_conflict(
    reader: _Reader,
    given: Mapping[str, tuple[str, Any]],
    var: str,
    what: str,
    value: Any,
    *,
    parse: Any,
) -> None:
    """ImproperlyConfigured naming both when ``var`` (or its keyword) disagrees with ``what``."""
    keyword, kw_value = given.get(var, (var, None))
    name, other = (keyword, kw_value) if kw_value is not None else (var, reader.text(var))
    if other is None:
        return
    try:
        theirs = parse(other)
    except (TypeError, ValueError):
        theirs = other
    if theirs != value:
        raise ImproperlyConfigured(
            f"{what}={value} conflicts with {name}={other}: set one of them "
            "(docs/configuration.md, SQLAlchemy names)"
        )


def _redshift_engine(config: dict[str, Any], reader: _Reader) -> dict[str, Any]:
    """A ``redshift://`` URL: dbconnmgr's Redshift ENGINE (Django's PostgreSQL backend with
    vendor ``redshift``) instead of django-redshift-backend, and the cluster's connection
    limit from ``DB_REDSHIFT_NODE_TYPE`` / ``DB_REDSHIFT_MAX_CONNECTIONS`` (over the URL's
    ``?node_type=`` / ``?max_connections=``). Other engines are returned as they are.

    The limit is validated by the ``dbconnmgr.E030`` system check, with the node types AWS
    publishes (this module is imported before Django is set up and reads no backend)."""
    if config.get("ENGINE") not in (_DJANGO_REDSHIFT_BACKEND, REDSHIFT_ENGINE):
        return config
    config = {**config, "ENGINE": REDSHIFT_ENGINE}
    options = dict(config.get("OPTIONS") or {})
    node_type = reader.text("DB_REDSHIFT_NODE_TYPE")
    if node_type is not None:
        options["node_type"] = node_type
    limit = reader.whole("DB_REDSHIFT_MAX_CONNECTIONS")
    if limit is not None:
        options["max_connections"] = limit
    elif isinstance(options.get("max_connections"), str):
        options["max_connections"] = _parse_whole(
            "?max_connections", options["max_connections"], minimum=1
        )
    # the ENGINE sets it with SET; kept out of libpq's options (see _redshift_session_options)
    if isinstance(options.get("statement_timeout"), str):
        options["statement_timeout"] = _parse_whole(
            "?statement_timeout", options["statement_timeout"], minimum=0
        )
    config["OPTIONS"] = options
    return config


def _redshift_session_options(
    options: dict[str, Any],
    reader: _Reader,
    statement_timeout: int | None,
    idle_in_transaction_session_timeout: int | None,
) -> None:
    """Redshift's session settings: ``statement_timeout`` (one of its configuration
    parameters) is set by the ENGINE once connected, as no AWS page documents the startup
    packet's ``options`` PostgreSQL reads ``-c`` settings from; PostgreSQL's
    ``idle_in_transaction_session_timeout`` does not exist on Redshift (its idle
    transactions end after 6 hours, not configurable) and is refused, naming the key."""
    chosen = reader.whole("DB_STATEMENT_TIMEOUT", ("statement_timeout", statement_timeout),
                          minimum=0)  # fmt: skip
    if chosen is not None:
        options["statement_timeout"] = chosen
    name, value = reader._pick(
        "DB_IDLE_IN_TRANSACTION_TIMEOUT",
        ("idle_in_transaction_session_timeout", idle_in_transaction_session_timeout),
    )
    if value is not None:
        raise ImproperlyConfigured(
            f"{name}={value}: Amazon Redshift has no idle_in_transaction_session_timeout "
            "(an idle transaction ends its session after 6 hours, a fixed limit); unset it"
        )
    if "options" in options:
        raise ImproperlyConfigured(
            "OPTIONS['options'] on a Redshift alias: no AWS page documents startup-packet "
            "settings; use DB_STATEMENT_TIMEOUT (statement_timeout) or SET in your code"
        )


def _mysql_options(
    config: dict[str, Any],
    options: dict[str, Any],
    reader: _Reader,
    connect_timeout: int | None,
    statement_timeout: int | None,
) -> None:
    """MySQL / MariaDB (mysqlclient): timeouts, charset, strict mode, and a CONN_MAX_AGE
    below the server's ``wait_timeout``.

    Django has no MySQL pool: every thread holds its own connection (docs/mysql.md). A
    persistent connection older than the server's ``wait_timeout`` (``$DB_WAIT_TIMEOUT``,
    default 28800) has been closed by the server, and Django's next query on it fails with
    "MySQL server has gone away": CONN_MAX_AGE (forever included) is capped below it.
    """
    wait = _first(reader.whole("DB_WAIT_TIMEOUT"), DEFAULT_WAIT_TIMEOUT)
    ceiling = max(0, wait - WAIT_TIMEOUT_MARGIN)
    age = config.get("CONN_MAX_AGE")
    if age is None or age > ceiling:
        config["CONN_MAX_AGE"] = ceiling
    _set_option(
        options,
        "connect_timeout",
        reader.whole("DB_CONNECT_TIMEOUT", ("connect_timeout", connect_timeout)),
        DEFAULT_CONNECT_TIMEOUT,
    )
    for key, var in (("read_timeout", "DB_READ_TIMEOUT"), ("write_timeout", "DB_WRITE_TIMEOUT")):
        chosen = reader.whole(var)
        if chosen is not None:
            options[key] = chosen
        elif isinstance(options.get(key), str):
            options[key] = _parse_whole(f"OPTIONS[{key!r}]", options[key])
    options.setdefault("charset", "utf8mb4")
    existing = str(options.get("init_command") or "")
    assignments = [] if "sql_mode" in existing else ["sql_mode='STRICT_TRANS_TABLES'"]
    limit_ms = reader.whole(
        "DB_STATEMENT_TIMEOUT", ("statement_timeout", statement_timeout), minimum=0
    )
    if limit_ms:  # MariaDB's max_statement_time is in seconds
        assignments.append(f"SESSION max_statement_time={limit_ms / 1000:g}")
    ours = "SET " + ", ".join(assignments) if assignments else ""
    options["init_command"] = "; ".join(c for c in (existing, ours) if c)


def normalize_database_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Fix what URL parsers (django-environ, dj-database-url) leave as strings.

    - ``CONN_MAX_AGE``: ``"none"``/``"null"`` becomes None, digits an int.
    - ``CONN_HEALTH_CHECKS``, ``ATOMIC_REQUESTS``, ``AUTOCOMMIT``,
      ``DISABLE_SERVER_SIDE_CURSORS``: ``"false"``/``"0"``/``"off"`` become False (the
      string ``"false"`` is truthy), ``"true"``/``"1"``/``"on"`` True.
    - ``OPTIONS["pool"]``: ``"true"`` becomes True, ``"false"`` False.
    - Whole-number libpq options (``connect_timeout``, ``keepalives*``) become ints;
      ``connect_timeout=0`` (wait forever) is refused.
    - Server settings given as URL parameters (``statement_timeout``, ``lock_timeout``,
      ``idle_in_transaction_session_timeout``, ``idle_session_timeout``,
      ``search_path``) move into ``options`` as ``-c name=value``, which libpq accepts
      (a value ``options`` already sets wins).
    - A percent-encoded socket directory in ``HOST`` (``%2Fvar%2Frun%2Fpostgresql``) is
      decoded.

    Args:
        config: one ``DATABASES`` entry; it is not modified.

    Returns:
        A new dict (``OPTIONS`` copied).

    Raises:
        ImproperlyConfigured: a value that is neither of the accepted spellings.
    """
    result = dict(config)
    if "CONN_MAX_AGE" in result and isinstance(result["CONN_MAX_AGE"], str):
        result["CONN_MAX_AGE"] = _parse_age("CONN_MAX_AGE", result["CONN_MAX_AGE"])
    for key in _BOOLEAN_KEYS:
        if isinstance(result.get(key), str):
            result[key] = _parse_bool(key, result[key])
    host = result.get("HOST")
    if isinstance(host, str) and host.upper().startswith("%2F"):
        result["HOST"] = unquote(host)

    options = dict(result.get("OPTIONS") or {})
    if isinstance(options.get("pool"), str):
        options["pool"] = _parse_bool("OPTIONS['pool']", options["pool"])
    for key in _INTEGER_OPTIONS:
        value = options.get(key)
        if isinstance(value, str) or (key == "connect_timeout" and value is not None):
            # connect_timeout=0 means "wait forever": a silent server would hang every
            # connection (and every health check), so it is refused like DB_CONNECT_TIMEOUT=0.
            minimum = 1 if key == "connect_timeout" else 0
            options[key] = _parse_whole(f"OPTIONS[{key!r}]", value, minimum=minimum)
    is_postgres = result.get("ENGINE") in POSTGRES_ENGINES
    moved = {k: options.pop(k) for k in SERVER_SETTINGS_IN_URL if k in options and is_postgres}
    if moved:
        options["options"] = append_server_options(options.get("options"), **moved)
    if "OPTIONS" in result or options:
        result["OPTIONS"] = options
    return result


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


# -- parsing -------------------------------------------------------------------------------


def _first(*values: Any) -> Any:
    """The first value that is not None."""
    for value in values:
        if value is not None:
            return value
    return None


def _set_option(options: dict[str, Any], key: str, chosen: Any, fallback: Any) -> None:
    """Set ``key`` to ``chosen`` when given, else keep the URL's value, else ``fallback``."""
    if chosen is not None:
        options[key] = chosen
    else:
        options.setdefault(key, fallback)


# One parser per kind, for keyword arguments, environment variables and URL values alike:
# a string must be spelled in ASCII digits (``int()`` alone takes "1_000", "+5" and other
# scripts' digits); a keyword must be of the type (a bool is not a number).
_DIGITS: Final = re.compile(r"-?[0-9]+", re.ASCII)
_DECIMAL: Final = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
#: The largest whole number a setting takes (PostgreSQL's integer settings stop there).
MAX_WHOLE: Final = 2**31 - 1
#: The longest pool timeout, in seconds (a day).
MAX_POOL_TIMEOUT: Final = 86400.0


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower() if isinstance(value, str) else None
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def _parse_whole(name: str, value: Any, *, minimum: int = 1, maximum: int = MAX_WHOLE) -> int:
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}")
    if not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum} and <= {maximum}, got {number}")
    return number


def _parse_seconds(name: str, value: Any, *, maximum: float = MAX_POOL_TIMEOUT) -> float:
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value.strip())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {value!r}")
    if not 0 < number <= maximum:  # NaN fails too
        raise ImproperlyConfigured(
            f"{name} must be a number of seconds > 0 and <= {maximum:g}, got {value!r}"
        )
    return number


def _parse_age(name: str, value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() in _NONE:
        return None
    return _parse_whole(name, value, minimum=0)


class _Reader:
    """Typed reads of a keyword argument, else its environment variable.

    The keyword wins when it is not None; both go through the same parser, and an error
    names the one that was read. An empty variable counts as unset.
    """

    def __init__(self, environment: Mapping[str, str]) -> None:
        self.environment = environment

    def text(self, name: str) -> str | None:
        value = self.environment.get(name, "").strip()
        return value or None

    def _pick(self, var: str, keyword: tuple[str, Any] | None) -> tuple[str, Any]:
        if keyword is not None and keyword[1] is not None:
            return keyword
        return var, self.text(var)

    def boolean(self, var: str, keyword: tuple[str, Any] | None = None) -> bool | None:
        name, value = self._pick(var, keyword)
        return None if value is None else _parse_bool(name, value)

    def whole(
        self, var: str, keyword: tuple[str, Any] | None = None, *, minimum: int = 1,
        maximum: int = MAX_WHOLE,
    ) -> int | None:  # fmt: skip
        name, value = self._pick(var, keyword)
        if value is None:
            return None
        return _parse_whole(name, value, minimum=minimum, maximum=maximum)

    def seconds(self, var: str, keyword: tuple[str, Any] | None = None) -> float | None:
        name, value = self._pick(var, keyword)
        return None if value is None else _parse_seconds(name, value)

    def age(self, var: str, keyword: tuple[str, Any] | None = None) -> tuple[bool, int | None]:
        """(given, seconds): ``given`` is False when neither was set; None means forever."""
        name, value = self._pick(var, keyword)
        if value is None:
            return False, None
        return True, _parse_age(name, value)
