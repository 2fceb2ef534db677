"""System checks of ``settings.DATABASES``: misconfigurations that exhaust or break connections.

Errors are settings that fail at the first connection (or silently mean the opposite of
what was written); they run with every management command. ``W010`` and ``W013`` need
facts from DBCONNMGR and run always; ``W011`` and ``W012`` are advice for deployments and
run with ``manage.py check --deploy``. ``E018`` reads the pool_mode of the PgBouncer an
alias points at from ``DBCONNMGR["PGBOUNCER"][alias]["POOL_MODE"]``. Ids and hints are
listed in docs/configuration.md.

Every rule is a function of the ``DATABASES`` mapping, so it can be called with any dict.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any

import django
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from dbconnmgr.backends.engine_settings import EngineSettings, engine_settings
from dbconnmgr.core.budget import Service, services_from_setting
from dbconnmgr.database_settings import TRANSACTION_POOL_MODES

__all__ = [
    "DEPLOY_RULES",
    "RULES",
    "check_database_settings",
    "known_connection_options",
]

Databases = Mapping[str, Mapping[str, Any]]
Rule = Callable[[str, Mapping[str, Any], "Context"], Iterator[CheckMessage]]

# Keys of the pool dict Django sets itself: giving them too is a TypeError.
_POOL_KEYS_DJANGO_SETS = frozenset({"kwargs", "open", "configure", "conninfo"})
_BOOLEAN_SETTINGS = (
    "CONN_HEALTH_CHECKS",
    "ATOMIC_REQUESTS",
    "AUTOCOMMIT",
    "DISABLE_SERVER_SIDE_CURSORS",
)


class Context:
    """Facts from outside DATABASES the rules need."""

    def __init__(
        self,
        *,
        asgi: bool = False,
        services: tuple[Service, ...] = (),
        psycopg3: bool | None = None,
        psycopg_pool: bool | None = None,
        pool_accepts_check: bool | None = None,
        pooler_modes: Mapping[str, str] | None = None,
    ) -> None:
        self.asgi = asgi
        self.services = services
        #: alias -> pool_mode of the PgBouncer it points at (DBCONNMGR["PGBOUNCER"]).
        self.pooler_modes = dict(pooler_modes or {})
        self.psycopg3 = _has_psycopg3() if psycopg3 is None else psycopg3
        self.psycopg_pool = (
            importlib.util.find_spec("psycopg_pool") is not None
            if psycopg_pool is None
            else psycopg_pool
        )
        # Django passed its own check= to ConnectionPool until 6.1 (ticket #37075): a
        # "check" key in the pool dict was then a TypeError at the first connection.
        self.pool_accepts_check = (
            django.VERSION >= (6, 1) if pool_accepts_check is None else pool_accepts_check
        )


def _has_psycopg3() -> bool:
    try:
        from django.db.backends.postgresql.psycopg_any import is_psycopg3
    except ImportError:
        return False
    return bool(is_psycopg3)


def known_connection_options() -> frozenset[str]:
    """Every key libpq (asked through psycopg) or Django's backend accepts in OPTIONS."""
    from dbconnmgr.backends.postgresql.settings import known_options

    return known_options()


@cache
def _pool_parameters() -> frozenset[str]:
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        return frozenset()
    return frozenset(inspect.signature(ConnectionPool.__init__).parameters) - {"self"}


def _engine(db: Mapping[str, Any]) -> EngineSettings | None:
    """What the alias's engine declares (backends/<engine>/settings.py); None: not ours."""
    return engine_settings(db.get("ENGINE"))


def _options(db: Mapping[str, Any]) -> Mapping[str, Any]:
    options = db.get("OPTIONS")
    return options if isinstance(options, Mapping) else {}


def _pool(db: Mapping[str, Any]) -> Any:
    return _options(db).get("pool")


def _pool_max_size(pool: Any) -> int:
    if isinstance(pool, Mapping):
        return int(pool.get("max_size") or pool.get("min_size") or 4)
    return 4


def _where(alias: str) -> str:
    return f"DATABASES[{alias!r}]"


# -- rules ---------------------------------------------------------------------------------


def pool_with_persistent_connections(
    alias: str, db: Mapping[str, Any], ctx: Context
) -> Iterator[CheckMessage]:
    """E010: a pool and CONN_MAX_AGE != 0 (Django refuses it, at the first connection)."""
    if _pool(db) and db.get("CONN_MAX_AGE", 0) != 0:
        yield Error(
            f"{_where(alias)} has a pool and CONN_MAX_AGE={db.get('CONN_MAX_AGE')!r}: "
            "Django raises ImproperlyConfigured at the first connection.",
            hint="Set CONN_MAX_AGE to 0; the pool's max_lifetime bounds a connection's life "
            "(dbconnmgr.database_settings.database_config() does both).",
            id="dbconnmgr.E010",
        )


def pool_without_driver(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """E011: a pool without psycopg 3 or psycopg_pool."""
    if not _pool(db):
        return
    missing = [n for n, ok in (("psycopg 3", ctx.psycopg3), ("psycopg_pool", ctx.psycopg_pool))
               if not ok]  # fmt: skip
    if missing:
        yield Error(
            f"{_where(alias)} asks for a pool but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed.",
            hint="pip install 'psycopg[binary,pool]', or remove OPTIONS['pool'].",
            id="dbconnmgr.E011",
        )


def pool_check_key(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """E012: a "check" key in the pool dict on a Django that passes its own check=."""
    pool = _pool(db)
    if isinstance(pool, Mapping) and "check" in pool and not ctx.pool_accepts_check:
        yield Error(
            f"{_where(alias)}['OPTIONS']['pool'] has a 'check' key: Django "
            f"{django.get_version()} passes its own check= to ConnectionPool, so the first "
            "connection fails with TypeError.",
            hint="Remove 'check' and set CONN_HEALTH_CHECKS = True: Django then checks "
            "every connection the pool hands out.",
            id="dbconnmgr.E012",
        )


def pool_value(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """E013: OPTIONS['pool'] neither a bool nor a dict; E014: keys the pool does not take."""
    pool = _pool(db)
    if pool is None or isinstance(pool, bool):
        return
    if not isinstance(pool, Mapping):
        yield Error(
            f"{_where(alias)}['OPTIONS']['pool'] is {pool!r} ({type(pool).__name__}); it must "
            "be True or a dict of psycopg_pool.ConnectionPool arguments.",
            hint="A URL's ?pool=true arrives as the string 'true': use "
            "dbconnmgr.database_settings.normalize_database_settings() or database_config().",
            id="dbconnmgr.E013",
        )
        return
    accepted = _pool_parameters() - _POOL_KEYS_DJANGO_SETS
    unknown = sorted(k for k in pool if accepted and k not in accepted and k != "check")
    unknown += sorted(k for k in pool if k in _POOL_KEYS_DJANGO_SETS)
    if unknown:
        yield Error(
            f"{_where(alias)}['OPTIONS']['pool'] has keys ConnectionPool does not accept "
            f"from settings: {', '.join(unknown)}.",
            hint="Accepted: " + ", ".join(sorted(accepted - {"check"})) + ".",
            id="dbconnmgr.E014",
        )


def conn_max_age_type(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """E015: CONN_MAX_AGE not a whole number >= 0 or None (a string from a URL)."""
    if "CONN_MAX_AGE" not in db:
        return
    value = db["CONN_MAX_AGE"]
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return
    yield Error(
        f"{_where(alias)}['CONN_MAX_AGE'] is {value!r} ({type(value).__name__}); Django wants "
        "a whole number of seconds >= 0, or None for unlimited.",
        hint="?conn_max_age=none in a URL arrives as the string 'none': use "
        "dbconnmgr.database_settings.database_config() or normalize_database_settings().",
        id="dbconnmgr.E015",
    )


def boolean_types(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """E016: CONN_HEALTH_CHECKS (or ATOMIC_REQUESTS...) set to a non-bool, e.g. 'false'."""
    for key in _BOOLEAN_SETTINGS:
        if key in db and not isinstance(db[key], bool):
            value = db[key]
            yield Error(
                f"{_where(alias)}['{key}'] is {value!r} ({type(value).__name__}), not True "
                f"or False" + (": a non-empty string is true." if isinstance(value, str) else "."),
                hint="URL parsers leave ?conn_health_checks=false as the string 'false': use "
                "dbconnmgr.database_settings.normalize_database_settings().",
                id="dbconnmgr.E016",
            )


def unknown_options(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """E017: OPTIONS keys libpq does not know (the connection fails)."""
    engine = _engine(db)
    if engine is None or engine.known_options is None:
        return
    known = engine.known_options()
    unknown = sorted(k for k in _options(db) if k not in known)
    if unknown:
        yield Error(
            f"{_where(alias)}['OPTIONS'] has keys libpq does not know: {', '.join(unknown)}; "
            "connecting fails with 'invalid connection option'.",
            hint="Server settings go in one libpq option: "
            "OPTIONS['options'] = '-c statement_timeout=30000' (append to what is there; "
            "dbconnmgr.database_settings.append_server_options() does).",
            id="dbconnmgr.E017",
        )


def asgi_persistent(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """W010: ASGI with persistent connections and no pool (connections leak)."""
    if ctx.asgi and not _pool(db) and db.get("CONN_MAX_AGE", 0) != 0:
        yield Warning(
            f"{_where(alias)} keeps persistent connections (CONN_MAX_AGE="
            f"{db.get('CONN_MAX_AGE')!r}) under ASGI: each async request may run in another "
            "thread, and every one of them leaves a connection open.",
            hint="Use Django's pool (OPTIONS['pool']) with CONN_MAX_AGE = 0, or CONN_MAX_AGE = "
            "0 alone (database_config(asgi=True) does this).",
            id="dbconnmgr.W010",
        )


def pool_smaller_than_threads(
    alias: str, db: Mapping[str, Any], ctx: Context
) -> Iterator[CheckMessage]:
    """W013: a pool smaller than the threads of a process (known from DBCONNMGR SERVICES)."""
    pool = _pool(db)
    engine = _engine(db)
    if not pool or engine is None or not engine.native_pool:
        return
    size = _pool_max_size(pool)
    timeout = pool.get("timeout", 30) if isinstance(pool, Mapping) else 30
    for service in ctx.services:
        if service.threads > size:
            yield Warning(
                f"{_where(alias)}: a pool of {size} per process serves {service.threads} "
                f"threads of service {service.name!r}; past {size} busy threads, requests "
                f"wait up to {timeout} s for a connection, then fail.",
                hint=f"Raise the pool's max_size to {service.threads} if the budget allows "
                "(manage.py db_connections --action=budget), or lower the threads; if the "
                "queueing is intended, keep the pool timeout below the worker timeout and "
                "silence dbconnmgr.W013.",
                id="dbconnmgr.W013",
            )


def no_application_name(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """W011 (deploy): no application_name, so pg_stat_activity cannot tell services apart."""
    engine = _engine(db)
    if engine is not None and engine.application_name and not _options(db).get("application_name"):
        yield Warning(
            f"{_where(alias)} sets no application_name: the server's views (and "
            "db_connections --action=status) cannot tell this service's connections apart.",
            hint="OPTIONS['application_name'] = 'web' (database_config(service='web'), or "
            "DB_APPLICATION_NAME in the environment).",
            id="dbconnmgr.W011",
        )


def no_connect_timeout(alias: str, db: Mapping[str, Any], ctx: Context) -> Iterator[CheckMessage]:
    """W012 (deploy): no connect_timeout, so an unreachable server hangs workers."""
    engine = _engine(db)
    if engine is not None and engine.connect_timeout and not _options(db).get("connect_timeout"):
        yield Warning(
            f"{_where(alias)} sets no connect_timeout: when the server does not answer, "
            "every worker blocks on connect for the operating system's TCP timeout "
            "(minutes).",
            hint="OPTIONS['connect_timeout'] = 5 (database_config() sets it; "
            "DB_CONNECT_TIMEOUT changes it).",
            id="dbconnmgr.W012",
        )


def unsafe_behind_transaction_pooler(
    alias: str, db: Mapping[str, Any], ctx: Context
) -> Iterator[CheckMessage]:
    """E018: behind PgBouncer in transaction (or statement) mode, a native pool,
    server-side cursors or prepared statements kept across transactions."""
    mode = ctx.pooler_modes.get(alias)
    engine = _engine(db)
    if mode not in TRANSACTION_POOL_MODES or engine is None or not engine.pgbouncer:
        return
    unsafe = []
    if _pool(db):
        unsafe.append("a native pool (OPTIONS['pool']): a pool in front of the pool")
    if not db.get("DISABLE_SERVER_SIDE_CURSORS"):
        unsafe.append(
            "server-side cursors (DISABLE_SERVER_SIDE_CURSORS is off): .iterator() "
            "breaks when the next transaction lands on another server connection"
        )
    threshold = _options(db).get("prepare_threshold")
    if threshold is not None:
        unsafe.append(
            f"prepared statements (OPTIONS['prepare_threshold'] = {threshold!r}): a "
            "statement prepared on one server connection is missing on the next"
        )
    for problem in unsafe:
        yield Error(
            f"{_where(alias)} points at PgBouncer in {mode} mode but uses {problem}.",
            hint=f"database_config(pgbouncer='{mode}') (or DB_PGBOUNCER={mode}) sets "
            "DISABLE_SERVER_SIDE_CURSORS, prepare_threshold None and no pool.",
            id="dbconnmgr.E018",
        )


def mysql_outlives_wait_timeout(
    alias: str, db: Mapping[str, Any], ctx: Context
) -> Iterator[CheckMessage]:
    """W014: a MySQL connection kept longer than the server's wait_timeout."""
    age = db.get("CONN_MAX_AGE", 0)
    engine = _engine(db)
    wait = engine.wait_timeout if engine is not None else None
    if wait is None or (isinstance(age, int) and age < wait):
        return
    yield Warning(
        f"{_where(alias)} keeps MySQL connections for CONN_MAX_AGE={age!r}, not less than "
        f"the server's default wait_timeout ({wait} s): the server closes an "
        'idle connection first, and the next request on it fails with "MySQL server has '
        'gone away" (CONN_HEALTH_CHECKS only hides it at the cost of a ping).',
        hint="CONN_MAX_AGE below the server's wait_timeout (database_config() caps it; "
        "DB_WAIT_TIMEOUT tells it a lower server value).",
        id="dbconnmgr.W014",
    )


#: Rules run with every management command.
RULES: tuple[Rule, ...] = (
    pool_with_persistent_connections,
    pool_without_driver,
    pool_check_key,
    pool_value,
    conn_max_age_type,
    boolean_types,
    unknown_options,
    asgi_persistent,
    pool_smaller_than_threads,
    unsafe_behind_transaction_pooler,
    mysql_outlives_wait_timeout,
)
#: Rules run with ``manage.py check --deploy``.
DEPLOY_RULES: tuple[Rule, ...] = (no_application_name, no_connect_timeout)


def check_database_settings(
    databases: Databases,
    *,
    deploy: bool = False,
    asgi: bool = False,
    services: tuple[Service, ...] = (),
    context: Context | None = None,
) -> list[CheckMessage]:
    """Run the rules over a ``DATABASES`` mapping.

    Args:
        databases: alias -> settings dict, as in ``settings.DATABASES``.
        deploy: also run the deployment advice (W011, W012).
        asgi: the project is served over ASGI.
        services: processes that connect (for W013).
        context: all the outside facts at once (overrides ``asgi`` and ``services``).
    """
    ctx = context or Context(asgi=asgi, services=services)
    return _run(databases, RULES + (DEPLOY_RULES if deploy else ()), ctx)


def _run(databases: Databases, rules: tuple[Rule, ...], ctx: Context) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for alias, db in databases.items():
        if not isinstance(db, Mapping):
            continue
        for rule in rules:
            messages.extend(rule(alias, db, ctx))
    return messages


def _project_context() -> Context:
    from dbconnmgr.app_settings import get_setting

    asgi = get_setting("ASGI")
    if asgi is None:
        asgi = bool(getattr(settings, "ASGI_APPLICATION", None))
    try:
        services = tuple(services_from_setting(get_setting("SERVICES")))
    except ValueError:
        services = ()  # --action=budget reports the bad entry
    pooler_modes = {
        alias: mode
        for alias, entry in (_pgbouncer_entries() or {}).items()
        if isinstance(entry, Mapping) and isinstance(mode := entry.get("POOL_MODE"), str)
    }
    return Context(asgi=bool(asgi), services=services, pooler_modes=pooler_modes)


def _pgbouncer_entries() -> Mapping[str, Any] | None:
    from dbconnmgr.app_settings import get_setting
    from dbconnmgr.exceptions import InvalidSetting

    try:
        value = get_setting("PGBOUNCER")
    except InvalidSetting:
        return None  # dbconnmgr.E119 reports it
    return value if isinstance(value, Mapping) else None


@register("dbconnmgr")
def check_databases(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Django system check: the project's DATABASES (errors, ASGI, pool size)."""
    return _run(settings.DATABASES, RULES, _project_context())


@register("dbconnmgr", deploy=True)
def check_databases_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Django system check (``--deploy``): application_name and connect_timeout."""
    return _run(settings.DATABASES, DEPLOY_RULES, _project_context())
