"""Helpers for the project's ``settings.DATABASES``, read from the environment.

This module is imported from ``settings.py``, before Django is set up: it never touches
``django.conf.settings``, the app registry, ``django.db`` or a database driver. Typical use::

    from dbconnmgr.database_settings import database_config

    DATABASES = {"default": database_config(service="web")}

Every environment variable, the profiles and the precedence rules are documented in
docs/configuration.md. Precedence, highest first: a keyword argument, the dedicated
environment variable (``DB_MAX_CONNS``...), the ``DATABASE_URL`` query string, the profile.
:func:`database_config` decides every engine-neutral value in one place (:func:`_decide`),
then applies small steps: the pool plan (:func:`pool_options`), the engine's own step
(``backends/<engine>/settings.py``, found by ENGINE), PgBouncer, the overrides.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import django
import environ
from django.core.exceptions import ImproperlyConfigured

from dbconnmgr.backends.engine_settings import (
    DEFAULT_CONNECT_TIMEOUT,
    MAX_POOL_TIMEOUT,
    MAX_WHOLE,
    EngineSettings,
    Sources,
    engine_settings,
    first,
    parse_age,
    parse_bool,
    parse_seconds,
    parse_whole,
)

# Engine constants once defined here, kept importable from here.
from dbconnmgr.backends.mysql.settings import (
    DEFAULT_WAIT_TIMEOUT,
    MYSQL_ENGINES,
    WAIT_TIMEOUT_MARGIN,
)
from dbconnmgr.backends.postgresql.settings import (
    DEFAULT_KEEPALIVES_COUNT,
    DEFAULT_KEEPALIVES_IDLE,
    DEFAULT_KEEPALIVES_INTERVAL,
    INSTRUMENTED_ENGINE,
    POSTGRES_ENGINES,
    SERVER_SETTINGS_IN_URL,
    append_server_options,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_KEEPALIVES_COUNT",
    "DEFAULT_KEEPALIVES_IDLE",
    "DEFAULT_KEEPALIVES_INTERVAL",
    "DEFAULT_PROFILE",
    "DEFAULT_WAIT_TIMEOUT",
    "INSTRUMENTED_ENGINE",
    "MAX_POOL_TIMEOUT",
    "MAX_WHOLE",
    "MYSQL_ENGINES",
    "PGBOUNCER_POOL_MODES",
    "POOL_ON_FULL_CHOICES",
    "POOL_ON_FULL_KEY",
    "POOL_SEEDS",
    "POSTGRES_ENGINES",
    "PROFILES",
    "SERVER_SETTINGS_IN_URL",
    "TRANSACTION_POOL_MODES",
    "WAIT_TIMEOUT_MARGIN",
    "Choices",
    "PoolSeeds",
    "Profile",
    "append_server_options",
    "database_config",
    "normalize_database_settings",
    "pool_options",
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
DEFAULT_POOL_TIMEOUT: Final = 10.0
DEFAULT_MIN_CONNS: Final = 1
#: The most connections per process a setting takes (PostgreSQL's largest max_connections).
MAX_CONNECTIONS: Final = 262_143

# Top-level keys django-environ leaves as strings when they come from the URL query.
_BOOLEAN_KEYS: Final = (
    "CONN_HEALTH_CHECKS",
    "ATOMIC_REQUESTS",
    "AUTOCOMMIT",
    "DISABLE_SERVER_SIDE_CURSORS",
)


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
    src = Sources(
        os.environ if env is None else env,
        {
            "profile": profile,
            "service": service,
            "pool": pool,
            "max_conns": max_conns,
            "min_conns": min_conns,
            "conn_max_age": conn_max_age,
            "pool_timeout": pool_timeout,
            "asgi": asgi,
            "application_name": application_name,
            "connect_timeout": connect_timeout,
            "statement_timeout": statement_timeout,
            "idle_in_transaction_session_timeout": idle_in_transaction_session_timeout,
            "keepalives": keepalives,
            "pgbouncer": pgbouncer,
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_recycle": pool_recycle,
            "pool_pre_ping": pool_pre_ping,
            "pool_on_full": pool_on_full,
            "pool_max_waiting": pool_max_waiting,
            "CONN_HEALTH_CHECKS": overrides.get("CONN_HEALTH_CHECKS"),
        },
    )
    config = _parse_url(env_var, src.environment.get(env_var) or default)
    engine = engine_settings(config.get("ENGINE"))
    choices = _decide(src, config, env_var, engine)

    options: dict[str, Any] = dict(config.get("OPTIONS") or {})
    options.pop("pool", None)
    config["CONN_HEALTH_CHECKS"] = choices.health_checks
    if choices.pool:
        options["pool"] = pool_options(choices)
        config["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
        config[POOL_ON_FULL_KEY] = choices.on_full or "queue"
    else:
        config["CONN_MAX_AGE"] = 0 if choices.asgi else choices.age
    if engine is not None:
        engine.configure(config, options, src)
    _behind_pooler(config, options, choices.pooler_mode)
    config["OPTIONS"] = options
    return _with_overrides(config, overrides)


@dataclass(frozen=True, slots=True)
class Choices:
    """Every engine-neutral value of one ``database_config()`` call, precedence applied.

    Attributes:
        profile: the profile in force.
        asgi: served over ASGI (never persistent connections).
        pooler_mode: the pool_mode of the PgBouncer the URL points at, or None.
        pool: Django's native pool is on.
        url_pool: the URL's ``?pool=`` value (a dict is the base of the pool's arguments).
        age: seconds a connection lives (None: forever).
        health_checks: Django's ``CONN_HEALTH_CHECKS``.
        max_size: connections per process (the pool's ``max_size``).
        min_size: connections the pool keeps open.
        timeout: seconds a request waits for a pooled connection.
        on_full: ``queue`` or ``reject`` (None: not given).
        max_waiting: psycopg_pool's ``max_waiting`` (None: not given).
    """

    profile: Profile
    asgi: bool
    pooler_mode: str | None
    pool: bool
    url_pool: Any
    age: int | None
    health_checks: bool
    max_size: int
    min_size: int
    timeout: float
    on_full: str | None = None
    max_waiting: int | None = None


def _parse_url(env_var: str, url: str | None) -> dict[str, Any]:
    if not url:
        raise ImproperlyConfigured(f"{env_var} is not set (and no default URL was given)")
    try:
        return normalize_database_settings(environ.Env.db_url_config(url))
    except (KeyError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"{env_var} is not a database URL django-environ reads: {exc}"
        ) from None
    except ImproperlyConfigured as exc:  # a query parameter that does not parse
        raise ImproperlyConfigured(f"{env_var}: {exc}") from None


def _decide(
    src: Sources, config: dict[str, Any], env_var: str, engine: EngineSettings | None
) -> Choices:
    """Keyword > environment variable > URL query > profile, for every engine-neutral value.

    Pops the SQLAlchemy-named pool settings and ``CONN_MAX_AGE`` from ``config``. Every
    value is read (and so validated) whether or not it is used: a typo must not wait for
    the day somebody turns pooling on.
    """
    seeds = _pool_seeds(src, config, env_var)
    prof = _profile(src)
    use_asgi = first(src.boolean("DB_ASGI", "asgi"), False)
    pooler_mode, use_pool = _pool_choice(src, config, engine)
    age = _age(src, config, seeds, prof)
    health_checks = first(
        seeds.pre_ping, src.boolean("CONN_HEALTH_CHECKS"), config.get("CONN_HEALTH_CHECKS"), True
    )
    size = first(
        seeds.max_size,
        src.whole("DB_MAX_CONNS", "max_conns", maximum=MAX_CONNECTIONS),
        prof.max_conns,
    )
    floor = first(
        seeds.min_size,
        src.whole("DB_MIN_CONNS", "min_conns", minimum=0, maximum=MAX_CONNECTIONS),
        DEFAULT_MIN_CONNS,
    )
    if not use_pool:
        for name, value in (
            (seeds.names.get("pool_on_full"), seeds.on_full),
            (seeds.names.get("pool_max_waiting"), seeds.max_waiting),
        ):
            if value is not None:
                raise ImproperlyConfigured(f"{name} needs the pool (DB_POOL is off)")
    return Choices(
        profile=prof,
        asgi=use_asgi,
        pooler_mode=pooler_mode,
        pool=use_pool,
        url_pool=(config.get("OPTIONS") or {}).get("pool"),
        age=age,
        health_checks=health_checks,
        max_size=size,
        min_size=floor,
        timeout=first(seeds.timeout, DEFAULT_POOL_TIMEOUT),
        on_full=seeds.on_full,
        max_waiting=seeds.max_waiting,
    )


def _profile(src: Sources) -> Profile:
    chosen = src.keywords.get("profile") or src.text("DB_PROFILE") or DEFAULT_PROFILE
    if chosen not in PROFILES:
        known = ", ".join(PROFILES)
        raise ImproperlyConfigured(f"unknown database profile {chosen!r} (known: {known})")
    return PROFILES[chosen]


def _pool_choice(
    src: Sources, config: Mapping[str, Any], engine: EngineSettings | None
) -> tuple[str | None, bool]:
    """(PgBouncer pool_mode, native pool on): DB_POOL > the URL's ?pool= > available."""
    native = engine is not None and engine.native_pool
    pooler_mode = _pooler_mode(*src.pick("DB_PGBOUNCER", "pgbouncer"))
    url_pool = (config.get("OPTIONS") or {}).get("pool")
    asked_pool = src.boolean("DB_POOL", "pool")
    if pooler_mode and asked_pool:
        raise ImproperlyConfigured(
            f"DB_POOL with DB_PGBOUNCER={pooler_mode}: PgBouncer is the pool; a pool per "
            "process in front of it holds PgBouncer's clients idle (unset DB_POOL)"
        )
    use_pool = bool(
        first(
            asked_pool,
            None if url_pool is None or pooler_mode else bool(url_pool),
            native and pooling_available() and not pooler_mode,
        )
    )
    if use_pool and not native:
        raise ImproperlyConfigured(
            f"DB_POOL: Django's native pool is for PostgreSQL, not {config.get('ENGINE')}"
        )
    if use_pool and not pooling_available():
        raise ImproperlyConfigured(
            "DB_POOL: pooling needs Django >= 5.1, psycopg 3 and psycopg_pool "
            "(pip install 'psycopg[binary,pool]')"
        )
    return pooler_mode, use_pool


def _age(src: Sources, config: dict[str, Any], seeds: PoolSeeds, prof: Profile) -> int | None:
    """Seconds a connection lives: pool_recycle > CONN_MAX_AGE > ?conn_max_age= > profile.

    Pops the URL's ``CONN_MAX_AGE`` (the pool plan or the engine step sets it again).
    """
    url_has_age = "CONN_MAX_AGE" in config
    url_age: int | None = config.pop("CONN_MAX_AGE", None)
    age_given, given_age = src.age("CONN_MAX_AGE", "conn_max_age")
    if seeds.recycle is not None:
        return seeds.recycle
    if age_given:
        return given_age
    return url_age if url_has_age else prof.conn_max_age


def pool_options(choices: Choices) -> dict[str, Any]:
    """``OPTIONS["pool"]``: psycopg_pool's arguments for the chosen sizes and lifetime.

    A dict given as the URL's ``?pool=`` is the base; ``min_size`` never exceeds
    ``max_size``.
    """
    url_pool = choices.url_pool
    result: dict[str, Any] = dict(url_pool) if isinstance(url_pool, dict) else {}
    size = choices.max_size
    result.update(min_size=min(choices.min_size, size), max_size=size, timeout=choices.timeout)
    if choices.age:  # None (forever) and 0 leave psycopg_pool's own max_lifetime (3600 s)
        result["max_lifetime"] = float(choices.age)
    if choices.max_waiting is not None:
        result["max_waiting"] = choices.max_waiting
    return result


def _behind_pooler(config: dict[str, Any], options: dict[str, Any], mode: str | None) -> None:
    if mode in TRANSACTION_POOL_MODES:
        # The next transaction may run on another server connection: nothing that lives
        # in a session (a WITH HOLD cursor, a prepared statement) may outlive one.
        config["DISABLE_SERVER_SIDE_CURSORS"] = True
        options["prepare_threshold"] = None


def _with_overrides(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The upper-case keywords, set last; ``OPTIONS`` is merged key by key."""
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
# Other environment variables that start with DB_POOL_ (a typo check must know them).
_OTHER_POOL_VARIABLES: Final[frozenset[str]] = frozenset()
# The settings a pool seed may contradict: variable -> its keyword.
_SEED_RIVALS: Final = {
    "DB_MAX_CONNS": "max_conns",
    "DB_MIN_CONNS": "min_conns",
    "CONN_MAX_AGE": "conn_max_age",
    "CONN_HEALTH_CHECKS": "CONN_HEALTH_CHECKS",
}


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


def _pool_seeds(src: Sources, config: dict[str, Any], env_var: str) -> PoolSeeds:
    """Read the SQLAlchemy-named pool settings (keyword > variable > URL query).

    Pops them from ``config["OPTIONS"]`` (libpq would reject them), and refuses one that
    contradicts the dbconnmgr-named setting it replaces.
    """
    url = _pop_url_seeds(src, config.setdefault("OPTIONS", {}), env_var)
    seeds = _read_seeds(src, url, env_var)
    _refuse_seed_conflicts(src, config, env_var, seeds)
    return seeds


def _pop_url_seeds(src: Sources, options: dict[str, Any], env_var: str) -> dict[str, Any]:
    url = {key: options.pop(key) for key in POOL_SEEDS if key in options}
    unknown = [
        f"{env_var} ?{key}" for key in options if key.startswith("pool_") or key == "max_overflow"
    ] + [
        var
        for var in src.environment
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
    return url


def _read_seeds(src: Sources, url: Mapping[str, Any], env_var: str) -> PoolSeeds:
    names: dict[str, str] = {}

    def pick(key: str) -> tuple[str, Any]:
        var = POOL_SEEDS[key]
        if src.keywords.get(key) is not None:
            found = (key, src.keywords[key])
        elif src.text(var) is not None:
            found = (var, src.text(var))
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
        return parse_whole(name, value, minimum=minimum, maximum=MAX_CONNECTIONS)

    floor = whole("pool_size", 0)
    overflow = whole("max_overflow", 0)
    name, value = pick("pool_timeout")
    timeout = None if value is None else parse_seconds(name, value)
    name, value = pick("pool_recycle")
    recycle = None if value is None else parse_whole(name, value, minimum=1)
    name, value = pick("pool_pre_ping")
    pre_ping = None if value is None else parse_bool(name, value)
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
    return PoolSeeds(floor, ceiling, timeout, recycle, pre_ping, on_full, max_waiting, names)


def _refuse_seed_conflicts(
    src: Sources, config: Mapping[str, Any], env_var: str, seeds: PoolSeeds
) -> None:
    names = seeds.names
    if seeds.min_size is not None and seeds.max_size is not None:
        what = names["pool_size"] + (
            f" + {names['max_overflow']}" if seeds.max_size != seeds.min_size else ""
        )
        _refuse_conflict(src, "DB_MAX_CONNS", what, seeds.max_size, parse=int)
        _refuse_conflict(src, "DB_MIN_CONNS", names["pool_size"], seeds.min_size, parse=int)
    recycle = seeds.recycle
    if recycle is not None:
        _refuse_conflict(src, "CONN_MAX_AGE", names["pool_recycle"], recycle, parse=int)
        if "CONN_MAX_AGE" in config and config["CONN_MAX_AGE"] != recycle:
            raise ImproperlyConfigured(
                f"{names['pool_recycle']}={recycle} conflicts with {env_var} ?conn_max_age="
                f"{config['CONN_MAX_AGE']}: set one of them"
            )
    pre_ping = seeds.pre_ping
    if pre_ping is not None:
        _refuse_conflict(
            src, "CONN_HEALTH_CHECKS", names["pool_pre_ping"], pre_ping,
            parse=lambda v: parse_bool("CONN_HEALTH_CHECKS", v),
        )  # fmt: skip
        url_checks = config.get("CONN_HEALTH_CHECKS")
        if url_checks is not None and url_checks != pre_ping:
            raise ImproperlyConfigured(
                f"{names['pool_pre_ping']}={pre_ping} conflicts with {env_var} "
                f"?conn_health_checks={url_checks}: set one of them"
            )


def _refuse_conflict(src: Sources, var: str, what: str, value: Any, *, parse: Any) -> None:
    """ImproperlyConfigured naming both when ``var`` (or its keyword) disagrees with ``what``."""
    name, other = src.pick(var, _SEED_RIVALS[var])
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


def normalize_database_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Fix what URL parsers (django-environ, dj-database-url) leave as strings.

    - ``CONN_MAX_AGE``: ``"none"``/``"null"`` becomes None, digits an int.
    - ``CONN_HEALTH_CHECKS``, ``ATOMIC_REQUESTS``, ``AUTOCOMMIT``,
      ``DISABLE_SERVER_SIDE_CURSORS``: ``"false"``/``"0"``/``"off"`` become False (the
      string ``"false"`` is truthy), ``"true"``/``"1"``/``"on"`` True.
    - ``OPTIONS["pool"]``: ``"true"`` becomes True, ``"false"`` False.
    - Whole-number options (``connect_timeout``; for PostgreSQL libpq's ``keepalives*``)
      become ints; ``connect_timeout=0`` (wait forever) is refused.
    - PostgreSQL: server settings given as URL parameters (``statement_timeout``,
      ``lock_timeout``, ``idle_in_transaction_session_timeout``, ``idle_session_timeout``,
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
        result["CONN_MAX_AGE"] = parse_age("CONN_MAX_AGE", result["CONN_MAX_AGE"])
    for key in _BOOLEAN_KEYS:
        if isinstance(result.get(key), str):
            result[key] = parse_bool(key, result[key])
    host = result.get("HOST")
    if isinstance(host, str) and host.upper().startswith("%2F"):
        result["HOST"] = unquote(host)

    engine = engine_settings(result.get("ENGINE"))
    options = dict(result.get("OPTIONS") or {})
    if isinstance(options.get("pool"), str):
        options["pool"] = parse_bool("OPTIONS['pool']", options["pool"])
    for key in engine.integer_options if engine else ("connect_timeout",):
        value = options.get(key)
        if isinstance(value, str) or (key == "connect_timeout" and value is not None):
            # connect_timeout=0 means "wait forever": a silent server would hang every
            # connection (and every health check), so it is refused like DB_CONNECT_TIMEOUT=0.
            minimum = 1 if key == "connect_timeout" else 0
            options[key] = parse_whole(f"OPTIONS[{key!r}]", value, minimum=minimum)
    if engine is not None:
        engine.normalize(options, result)
    if "OPTIONS" in result or options:
        result["OPTIONS"] = options
    return result
