"""Settings helpers: DATABASES from the environment, and the pool they configure, for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid

import django
import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.utils import ConnectionHandler

from dbconnmgr.backends.postgresql.driver import classify_error
from dbconnmgr.checks.databases import check_database_settings
from dbconnmgr.database_settings import (
    PROFILES,
    append_server_options,
    database_config,
    normalize_database_settings,
)
from dbconnmgr.exceptions import ServerUnavailable
from tests.conftest import ROOT, dsn_to_url, manage

URL = "postgres://app:secret@db.internal:5432/shop"


def config(**env: str):
    return database_config(env={"DATABASE_URL": URL, **env})


# -- profiles, precedence ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "size", "age"),
    [("development", 10, 180), ("staging", 20, 300), ("production", 25, 600),
     ("high-load", 15, 300)],
)  # fmt: skip
def test_profiles_set_pool_size_and_lifetime(profile: str, size: int, age: int) -> None:
    db = config(DB_PROFILE=profile)
    assert db["OPTIONS"]["pool"]["max_size"] == size
    assert db["OPTIONS"]["pool"]["max_lifetime"] == age
    assert db["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections
    assert PROFILES[profile].max_conns == size


def test_pool_off_gives_persistent_connections_of_the_profile() -> None:
    db = config(DB_POOL="false", DB_PROFILE="staging")
    assert "pool" not in db["OPTIONS"]
    assert db["CONN_MAX_AGE"] == 300


def test_asgi_never_gets_persistent_connections() -> None:
    assert config(DB_POOL="false", DB_ASGI="true", CONN_MAX_AGE="600")["CONN_MAX_AGE"] == 0
    pooled = config(DB_ASGI="true")
    assert pooled["CONN_MAX_AGE"] == 0 and pooled["OPTIONS"]["pool"]


def test_environment_overrides_profile_and_keyword_overrides_environment() -> None:
    db = config(DB_MAX_CONNS="7", DB_MIN_CONNS="2", CONN_MAX_AGE="90", DB_POOL_TIMEOUT="3.5")
    assert db["OPTIONS"]["pool"] == {
        "min_size": 2, "max_size": 7, "timeout": 3.5, "max_lifetime": 90.0,
    }  # fmt: skip
    db = database_config(env={"DATABASE_URL": URL, "DB_MAX_CONNS": "7"}, max_conns=4)
    assert db["OPTIONS"]["pool"]["max_size"] == 4


def test_connect_options_application_name_keepalives_timeouts() -> None:
    db = database_config(
        env={"DATABASE_URL": URL + "?options=-c%20search_path%3Dshop", "DB_STATEMENT_TIMEOUT":
             "30000", "DB_IDLE_IN_TRANSACTION_TIMEOUT": "60000"},
        service="worker",
    )  # fmt: skip
    options = db["OPTIONS"]
    assert options["application_name"] == "worker"
    assert options["connect_timeout"] == 5
    assert options["keepalives"] == 1 and options["keepalives_idle"] == 60
    # appended to the URL's options, which are kept
    assert options["options"] == (
        "-c search_path=shop -c statement_timeout=30000 "
        "-c idle_in_transaction_session_timeout=60000"
    )
    named = config(DB_APPLICATION_NAME="web-eu")
    assert named["OPTIONS"]["application_name"] == "web-eu"


def test_append_server_options_never_clobbers() -> None:
    assert append_server_options(None, statement_timeout=5) == "-c statement_timeout=5"
    assert (
        append_server_options("-c statement_timeout=100", statement_timeout=5, lock_timeout=None)
        == "-c statement_timeout=100"
    )
    assert append_server_options("-csearch_path=a", search_path="b c") == "-csearch_path=a"
    assert append_server_options("", search_path="a b") == "-c search_path=a\\ b"


def test_keepalives_follow_keyword_then_environment_then_url() -> None:
    assert config()["OPTIONS"]["keepalives"] == 1
    assert config(DB_KEEPALIVES="off")["OPTIONS"]["keepalives"] == 0
    from_url = database_config(env={"DATABASE_URL": URL + "?keepalives=0"})
    assert from_url["OPTIONS"]["keepalives"] == 0
    assert "keepalives_idle" not in from_url["OPTIONS"]
    forced = database_config(env={"DATABASE_URL": URL + "?keepalives=0"}, keepalives=True)
    assert forced["OPTIONS"]["keepalives"] == 1


def test_overrides_merge_options() -> None:
    db = database_config(
        env={"DATABASE_URL": URL}, OPTIONS={"sslmode": "require"}, ATOMIC_REQUESTS=True
    )
    assert db["OPTIONS"]["sslmode"] == "require"
    assert db["OPTIONS"]["pool"]["max_size"] == 25
    assert db["ATOMIC_REQUESTS"] is True


# -- URL pitfalls --------------------------------------------------------------------------


def test_url_string_pitfalls_are_normalised() -> None:
    url = (
        URL + "?conn_max_age=none&conn_health_checks=false&pool=true&atomic_requests=false"
        "&statement_timeout=100&connect_timeout=3"
    )
    db = database_config(env={"DATABASE_URL": url, "DB_POOL": "false"}, service="web")
    assert db["CONN_MAX_AGE"] is None
    assert db["CONN_HEALTH_CHECKS"] is False
    assert db["ATOMIC_REQUESTS"] is False
    assert db["OPTIONS"]["connect_timeout"] == 3
    assert "statement_timeout" not in db["OPTIONS"]
    assert db["OPTIONS"]["options"] == "-c statement_timeout=100"
    assert "pool" not in db["OPTIONS"]  # DB_POOL=false beats ?pool=true
    assert check_database_settings({"default": db}, deploy=True) == []


def test_normalize_raw_django_environ_output() -> None:
    import environ

    raw = environ.Env.db_url_config(
        "postgres://u:p@%2Fvar%2Frun%2Fpostgresql/db?conn_max_age=none&pool=true"
        "&conn_health_checks=off&keepalives_idle=30"
    )
    assert raw["CONN_MAX_AGE"] == "none" and raw["OPTIONS"]["pool"] == "true"
    fixed = normalize_database_settings(raw)
    assert fixed["CONN_MAX_AGE"] is None
    assert fixed["CONN_HEALTH_CHECKS"] is False
    assert fixed["OPTIONS"]["pool"] is True
    assert fixed["OPTIONS"]["keepalives_idle"] == 30
    assert fixed["HOST"] == "/var/run/postgresql"
    assert raw["CONN_MAX_AGE"] == "none"  # the input is not modified


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"DB_MAX_CONNS": "many"}, "DB_MAX_CONNS must be a whole number, got 'many'"),
        ({"DB_MAX_CONNS": "0"}, "DB_MAX_CONNS must be >= 1"),
        ({"DB_POOL": "maybe"}, "DB_POOL must be true or false"),
        ({"CONN_MAX_AGE": "forever"}, "CONN_MAX_AGE must be a whole number"),
        ({"DB_PROFILE": "prod"}, "unknown database profile 'prod'"),
        ({"DB_POOL_TIMEOUT": "-1"}, "DB_POOL_TIMEOUT must be a number of seconds > 0"),
        ({"DATABASE_URL": ""}, "DATABASE_URL is not set"),
    ],
)
def test_bad_environment_says_which_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment):
        database_config(env={"DATABASE_URL": URL, **env})


def test_sqlite_url_gets_no_pool_and_no_libpq_options() -> None:
    db = database_config(env={"DATABASE_URL": "sqlite:///:memory:"})
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["OPTIONS"] == {}
    assert db["CONN_MAX_AGE"] == 600
    with pytest.raises(ImproperlyConfigured, match="pool is for PostgreSQL"):
        database_config(env={"DATABASE_URL": "sqlite:///:memory:", "DB_POOL": "true"})


# -- the pool, for real --------------------------------------------------------------------


def _count(dsn: str, application_name: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND backend_type = 'client backend'",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_more_users_than_max_size_queue_instead_of_exceeding_it(dsn: str) -> None:
    """12 threads, a pool of 3: the server never sees more than 3; the rest wait their turn."""
    app = f"t-pool-{uuid.uuid4().hex[:8]}"
    alias = f"pool_{uuid.uuid4().hex[:8]}"
    db = database_config(
        env={"DATABASE_URL": dsn_to_url(dsn), "DB_MAX_CONNS": "3", "DB_APPLICATION_NAME": app}
    )
    assert db["OPTIONS"]["pool"]["max_size"] == 3
    handler = ConnectionHandler({"default": {}, alias: db})
    users = 12
    barrier = threading.Barrier(users + 1)
    seen_pids: set[int] = set()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def user() -> None:
        try:
            barrier.wait(timeout=20)
            connection = handler[alias]
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid(), pg_sleep(0.3)")
                pid = cursor.fetchone()[0]
            with lock:
                seen_pids.add(pid)
            connection.close()  # back to the pool
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=user) for _ in range(users)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=20)
    peak_server, peak_waiting = 0, 0
    try:
        while any(t.is_alive() for t in threads):
            peak_server = max(peak_server, _count(dsn, app))
            pool = handler[alias].pool  # type: ignore[attr-defined]
            peak_waiting = max(peak_waiting, pool.get_stats()["requests_waiting"])
            time.sleep(0.02)
        for thread in threads:
            thread.join()
        stats = handler[alias].pool.get_stats()  # type: ignore[attr-defined]
    finally:
        handler[alias].close_pool()  # type: ignore[attr-defined]
    assert not errors, errors
    assert peak_server == 3  # observed on the server: the pool's cap, never more
    assert len(seen_pids) <= 3  # 12 requests served by at most 3 backends
    assert peak_waiting > 0
    assert stats["pool_max"] == 3
    assert stats["requests_num"] == users
    assert stats["requests_queued"] >= users - 3
    assert stats.get("requests_errors", 0) == 0
    assert _count(dsn, app) == 0  # close_pool() closed them


def test_pool_timeout_is_an_error_of_the_pool_not_of_the_server(dsn: str) -> None:
    app = f"t-pooltimeout-{uuid.uuid4().hex[:8]}"
    alias = f"pool_{uuid.uuid4().hex[:8]}"
    db = database_config(
        env={"DATABASE_URL": dsn_to_url(dsn), "DB_APPLICATION_NAME": app},
        max_conns=1,
        pool_timeout=0.5,
    )
    handler = ConnectionHandler({"default": {}, alias: db})
    holder_ready, release = threading.Event(), threading.Event()

    def holder() -> None:
        with handler[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        holder_ready.set()
        release.wait(10)
        handler[alias].close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holder_ready.wait(10)
        failure: list[BaseException] = []

        def late() -> None:
            try:
                handler[alias].ensure_connection()
            except django.db.OperationalError as exc:
                failure.append(exc)
            finally:
                handler[alias].close()

        late_thread = threading.Thread(target=late)
        late_thread.start()
        late_thread.join(10)
        assert failure and "no pooled connection within 0.5 s" in str(failure[0])
        problem = classify_error(failure[0], alias)
        assert isinstance(problem, ServerUnavailable) and problem.kind == "timeout"
        assert _count(dsn, app) == 1
    finally:
        release.set()
        thread.join(10)
        handler[alias].close_pool()  # type: ignore[attr-defined]


def test_settings_py_from_the_environment_connects_through_the_pool(dsn: str) -> None:
    """example_project's settings.py with DB_POOL=true: a manage.py process really pools."""
    app = f"t-settings-{uuid.uuid4().hex[:8]}"
    code = (
        "import json; from django.db import connection; "
        "cur = connection.cursor(); "
        "cur.execute('SELECT application_name FROM pg_stat_activity "
        "WHERE pid = pg_backend_pid()'); "
        "name = cur.fetchone()[0]; "
        "print(json.dumps({'name': name, 'pool': connection.settings_dict['OPTIONS']['pool'], "
        "'age': connection.settings_dict['CONN_MAX_AGE'], "
        "'stats': connection.pool.get_stats(), "
        "'via_pool': connection.connection._pool is connection.pool}))"
    )
    result = manage(
        "shell", "-c", code,
        extra_env={"DB_POOL": "true", "DB_MAX_CONNS": "4", "DB_PROFILE": "staging",
                   "DB_APPLICATION_NAME": app},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["name"] == app
    assert data["via_pool"] is True
    assert data["age"] == 0
    assert data["pool"]["max_size"] == 4
    assert data["pool"]["max_lifetime"] == 300.0
    assert data["stats"]["pool_max"] == 4
    assert data["stats"]["requests_num"] >= 1


def test_importable_from_settings_py_before_django_is_set_up() -> None:
    code = (
        "import os, sys; os.environ.pop('DJANGO_SETTINGS_MODULE', None); "
        "from dbconnmgr.database_settings import database_config; "
        "from django.conf import settings; from django.apps import apps; "
        "db = database_config(env={'DATABASE_URL': 'postgres://u:p@h/db'}); "
        "print(settings.configured, apps.ready, 'django.db' in sys.modules, db['ENGINE'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False", "dbconnmgr.db.postgresql"]


def test_pooled_alias_on_an_unreachable_server_is_one_line_not_a_traceback() -> None:
    from devtools.pgserver import free_port

    url = f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"
    result = manage(
        "db_connections", database_url=url,
        extra_env={"DB_POOL": "true", "DB_POOL_TIMEOUT": "1"},
    )  # fmt: skip
    assert result.returncode == 2  # critical: unreachable
    assert "Traceback" not in result.stderr
    # status reads a pooled alias through a private unpooled connection: the real cause at
    # once, and no pool workers logging their attempts.
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError")
    assert "connection refused" in lines[0]


def test_a_pool_timeout_is_recognised_by_its_type_not_its_wording() -> None:
    from psycopg_pool import PoolTimeout

    wrapped = django.db.OperationalError("pool exhausted (reworded by a future release)")
    wrapped.__cause__ = PoolTimeout("pool exhausted (reworded by a future release)")
    problem = classify_error(wrapped, "default")
    assert isinstance(problem, ServerUnavailable)
    assert problem.kind == "timeout" and "connection pool gave no connection" in str(problem)


# -- one parser for keywords, environment values and the URL --------------------------------
@pytest.mark.parametrize(
    ("keywords", "fragment"),
    [
        ({"max_conns": -1}, "max_conns must be >= 1"),
        ({"max_conns": "abc"}, "max_conns must be a whole number, got 'abc'"),
        ({"max_conns": 2.5}, "max_conns must be a whole number, got 2.5"),
        ({"max_conns": True}, "max_conns must be a whole number, got True"),
        ({"min_conns": -1}, "min_conns must be >= 0"),
        ({"conn_max_age": -5}, "conn_max_age must be >= 0"),
        ({"pool_timeout": -1}, "pool_timeout must be a number of seconds > 0"),
        ({"pool_timeout": float("inf")}, "pool_timeout must be a number of seconds > 0"),
        ({"connect_timeout": 0}, "connect_timeout must be >= 1"),
        ({"statement_timeout": -1}, "statement_timeout must be >= 0"),
        ({"pool": "maybe"}, "pool must be true or false"),
    ],
)
def test_keyword_arguments_are_validated_like_environment_values(
    keywords: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(fragment)):
        database_config(env={"DATABASE_URL": URL}, **keywords)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1_000", "+5", "\u0665", "5.0", " "])
def test_environment_numbers_are_ascii_digits_only(value: str) -> None:
    if not value.strip():  # empty counts as unset
        assert config(DB_MAX_CONNS=value)["OPTIONS"]["pool"]["max_size"] == 25
        return
    with pytest.raises(ImproperlyConfigured, match="DB_MAX_CONNS must be a whole number"):
        config(DB_MAX_CONNS=value)


def test_pool_variables_are_validated_when_the_pool_is_off() -> None:
    for name in ("DB_MAX_CONNS", "DB_MIN_CONNS", "DB_POOL_TIMEOUT"):
        with pytest.raises(ImproperlyConfigured, match=name):
            config(DB_POOL="false", **{name: "abc"})


def test_connect_timeout_zero_in_the_url_is_refused() -> None:
    """0 means no timeout at all: health would hang forever on a silent server."""
    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_URL: .*connect_timeout.*>= 1"):
        database_config(env={"DATABASE_URL": URL + "?connect_timeout=0"})
    assert (
        database_config(env={"DATABASE_URL": URL + "?connect_timeout=2"})["OPTIONS"][
            "connect_timeout"
        ]
        == 2
    )


@pytest.mark.parametrize(
    "spelling", ["statement_timeout", "statement-timeout", "Statement_Timeout"]
)
def test_the_urls_own_server_setting_wins(spelling: str) -> None:
    url = f"{URL}?options=-c%20{spelling}%3D5000"
    options = database_config(env={"DATABASE_URL": url, "DB_STATEMENT_TIMEOUT": "30000"})[
        "OPTIONS"
    ]["options"]
    assert options == f"-c {spelling}=5000"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgres://app:pw@db:port/shop", "DATABASE_URL is not a database URL"),
        ("postgres://app:pw@db/shop?pool=abc", "DATABASE_URL: OPTIONS['pool'] must be true"),
    ],
)
def test_a_bad_database_url_is_one_line_from_manage_py(url: str, fragment: str) -> None:
    """ImproperlyConfigured at settings import: the example project says it in one line."""
    result = manage("db_connections", "--action=health", database_url=url)
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    with pytest.raises(ImproperlyConfigured) as info:
        database_config(env={"DATABASE_URL": url})
    assert info.value.__cause__ is None and info.value.__suppress_context__


# -- pool settings in SQLAlchemy's names (issue 13) -----------------------------------------


def test_sqlalchemy_names_map_onto_psycopg_pool() -> None:
    db = config(
        DB_POOL_SIZE="4", DB_MAX_OVERFLOW="6", DB_POOL_TIMEOUT="3", DB_POOL_RECYCLE="900",
        DB_POOL_PRE_PING="false", DB_POOL_ON_FULL="reject", DB_POOL_MAX_WAITING="8",
    )  # fmt: skip
    assert db["OPTIONS"]["pool"] == {
        "min_size": 4, "max_size": 10, "timeout": 3.0, "max_lifetime": 900.0, "max_waiting": 8,
    }  # fmt: skip
    assert db["CONN_HEALTH_CHECKS"] is False  # Django then passes check=None to the pool
    assert db["POOL_ON_FULL"] == "reject"
    assert db["ENGINE"] == "dbconnmgr.db.postgresql"
    assert ids_of(db) == []


def ids_of(db: dict[str, object]) -> list[str]:
    return [m.id for m in check_database_settings({"default": db}) if m.id]


def test_url_query_keys_and_precedence() -> None:
    url = URL + "?pool_size=2&max_overflow=1&pool_pre_ping=true&pool_recycle=60&pool_timeout=9"
    db = database_config(env={"DATABASE_URL": url})
    assert db["OPTIONS"]["pool"]["min_size"] == 2 and db["OPTIONS"]["pool"]["max_size"] == 3
    assert db["OPTIONS"]["pool"]["timeout"] == 9.0
    assert db["OPTIONS"]["pool"]["max_lifetime"] == 60.0
    assert db["CONN_HEALTH_CHECKS"] is True
    assert not any(key.startswith(("pool_", "max_overflow")) for key in db["OPTIONS"])
    # keyword > environment variable > URL query
    db = database_config(env={"DATABASE_URL": url, "DB_POOL_SIZE": "5"}, max_overflow=0)
    assert (db["OPTIONS"]["pool"]["min_size"], db["OPTIONS"]["pool"]["max_size"]) == (5, 5)
    db = database_config(env={"DATABASE_URL": url}, pool_size=7)
    assert db["OPTIONS"]["pool"]["max_size"] == 8


def test_pool_size_without_overflow_is_a_fixed_pool_and_agreeing_sizes_pass() -> None:
    db = config(DB_POOL_SIZE="6")
    assert (db["OPTIONS"]["pool"]["min_size"], db["OPTIONS"]["pool"]["max_size"]) == (6, 6)
    db = config(DB_POOL_SIZE="6", DB_MAX_OVERFLOW="2", DB_MAX_CONNS="8", DB_MIN_CONNS="6")
    assert db["OPTIONS"]["pool"]["max_size"] == 8


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DB_POOL_SIZE": "5", "DB_MAX_CONNS": "20"}, ("DB_POOL_SIZE", "DB_MAX_CONNS")),
        ({"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "5", "DB_MAX_CONNS": "20"},
         ("DB_POOL_SIZE + DB_MAX_OVERFLOW", "DB_MAX_CONNS")),
        ({"DB_POOL_SIZE": "5", "DB_MIN_CONNS": "2"}, ("DB_POOL_SIZE", "DB_MIN_CONNS")),
        ({"DB_POOL_RECYCLE": "60", "CONN_MAX_AGE": "600"}, ("DB_POOL_RECYCLE", "CONN_MAX_AGE")),
        ({"DB_POOL_PRE_PING": "false", "CONN_HEALTH_CHECKS": "true"},
         ("DB_POOL_PRE_PING", "CONN_HEALTH_CHECKS")),
        ({"DB_MAX_OVERFLOW": "5"}, ("DB_MAX_OVERFLOW", "DB_POOL_SIZE")),
    ],
)  # fmt: skip
def test_conflicting_sizes_name_both_settings(env: dict[str, str], names: tuple[str, ...]) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        config(**env)
    for name in names:
        assert name in str(caught.value)


@pytest.mark.parametrize(
    ("env", "url", "name"),
    [
        ({"DB_POOL_SIZE": "-1"}, "", "DB_POOL_SIZE"),
        ({"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "-2"}, "", "DB_MAX_OVERFLOW"),
        ({"DB_POOL_SIZE": "0"}, "", "DB_POOL_SIZE"),  # max_size 0
        ({"DB_POOL_RECYCLE": "-1"}, "", "DB_POOL_RECYCLE"),
        ({"DB_POOL_MAX_WAITING": "-3"}, "", "DB_POOL_MAX_WAITING"),
        ({"DB_POOL_TIMEOUT": "-1"}, "", "DB_POOL_TIMEOUT"),
        ({"DB_POOL_PRE_PING": "maybe"}, "", "DB_POOL_PRE_PING"),
        ({"DB_POOL_ON_FULL": "drop"}, "", "DB_POOL_ON_FULL"),
        ({"DB_POOL_SIZ": "3"}, "", "DB_POOL_SIZ"),
        ({}, "?pool_sise=3", "?pool_sise"),
        ({}, "?pool_size=-4", "?pool_size"),
        ({"DB_POOL": "false", "DB_POOL_ON_FULL": "reject"}, "", "DB_POOL_ON_FULL"),
    ],
)
def test_bad_pool_settings_name_the_key(env: dict[str, str], url: str, name: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        database_config(env={"DATABASE_URL": URL + url, **env})
    assert name in str(caught.value)


def test_unknown_key_suggests_the_known_one() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"did you mean pool_timeout\?"):
        database_config(env={"DATABASE_URL": URL + "?pool_timout=3"})
