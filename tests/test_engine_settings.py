"""The steps of database_config() alone, and the engine settings registry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

import dbconnmgr.backends
from dbconnmgr.backends import engine_settings as registry
from dbconnmgr.backends import registry as engines
from dbconnmgr.backends.engine_settings import Sources, engine_settings
from dbconnmgr.backends.mysql import settings as mysql
from dbconnmgr.backends.postgresql import settings as postgresql
from dbconnmgr.checks.databases import check_database_settings
from dbconnmgr.database_settings import (
    PROFILES,
    Choices,
    _decide,
    database_config,
    pool_options,
)
from tests.conftest import ROOT

pytestmark = pytest.mark.engine_neutral


def test_database_settings_imports_neither_django_db_nor_a_driver_nor_a_reader() -> None:
    code = (
        "import sys; import dbconnmgr.database_settings as d; "
        "d.database_config(env={'DATABASE_URL': 'postgres://u:p@h/db'}); "
        "d.database_config(env={'DATABASE_URL': 'mysql://u:p@h/db'}); "
        "print(','.join(sorted(m for m in sys.modules if m == 'django.db' "
        "or m.startswith(('django.db.', 'psycopg', 'MySQLdb', 'pymysql')) "
        "or m.endswith('.reader'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("key", "vendor"),
    [
        ("django.db.backends.postgresql", "postgresql"),
        ("dbconnmgr.db.postgresql", "postgresql"),
        ("django.contrib.gis.db.backends.postgis", "postgresql"),
        ("postgres", "postgresql"),
        ("django.db.backends.mysql", "mysql"),
        ("mysql", "mysql"),
    ],
)
def test_registry_finds_the_engine_by_engine_or_scheme(key: str, vendor: str) -> None:
    found = engine_settings(key)
    assert found is not None and found.vendor == vendor


@pytest.mark.parametrize("key", ["django.db.backends.sqlite3", None, 3, "oracle"])
def test_registry_knows_nothing_of_other_engines(key: object) -> None:
    assert engine_settings(key) is None


def choices(**changes: Any) -> Choices:
    base: dict[str, Any] = dict(
        profile=PROFILES["production"],
        asgi=False,
        pooler_mode=None,
        pool=True,
        url_pool=True,
        age=600,
        health_checks=True,
        max_size=8,
        min_size=2,
        timeout=10.0,
    )
    return Choices(**{**base, **changes})


def test_pool_options_step() -> None:
    assert pool_options(choices()) == {
        "min_size": 2,
        "max_size": 8,
        "timeout": 10.0,
        "max_lifetime": 600.0,
    }
    # min_size never above max_size; forever (None) and 0 keep psycopg_pool's lifetime
    assert pool_options(choices(min_size=20, age=None))["min_size"] == 8
    assert "max_lifetime" not in pool_options(choices(age=0))
    # a URL's pool dict is the base; the sizes chosen win over it
    based = pool_options(choices(url_pool={"max_idle": 60, "max_size": 99}, max_waiting=3))
    assert based["max_idle"] == 60 and based["max_size"] == 8 and based["max_waiting"] == 3


def decide(env: dict[str, str], keywords: dict[str, Any] | None = None, **url: Any) -> Choices:
    config: dict[str, Any] = {"ENGINE": "django.db.backends.postgresql", **url}
    src = Sources(env, keywords or {})
    return _decide(src, config, "DATABASE_URL", engine_settings(config["ENGINE"]))


def test_decide_keyword_over_environment_over_url_over_profile() -> None:
    assert decide({}).age == PROFILES["production"].conn_max_age
    assert decide({}, CONN_MAX_AGE=30).age == 30
    assert decide({"CONN_MAX_AGE": "40"}, CONN_MAX_AGE=30).age == 40
    assert decide({"CONN_MAX_AGE": "40"}, {"conn_max_age": 50}, CONN_MAX_AGE=30).age == 50
    assert decide({"DB_PROFILE": "staging"}).max_size == PROFILES["staging"].max_conns
    assert decide({"DB_PROFILE": "staging"}, {"profile": "high-load"}).max_size == 15


def test_decide_refuses_the_native_pool_on_an_engine_without_one() -> None:
    src = Sources({"DB_POOL": "true"})
    config = {"ENGINE": "django.db.backends.mysql"}
    with pytest.raises(ImproperlyConfigured, match="native pool is for PostgreSQL"):
        _decide(src, config, "DATABASE_URL", engine_settings(config["ENGINE"]))


def test_postgresql_step_alone() -> None:
    config: dict[str, Any] = {"ENGINE": "django.db.backends.postgresql"}
    options: dict[str, Any] = {"options": "-c search_path=app", "connect_timeout": 3}
    src = Sources({"DB_STATEMENT_TIMEOUT": "2000"}, {"service": "web", "keepalives": False})
    postgresql.configure(config, options, src)
    assert config["ENGINE"] == postgresql.INSTRUMENTED_ENGINE
    assert options == {
        "options": "-c search_path=app -c statement_timeout=2000",
        "connect_timeout": 3,  # the URL's value, no keyword or variable given
        "application_name": "web",
        "keepalives": 0,
    }


def test_mysql_step_alone() -> None:
    config: dict[str, Any] = {"ENGINE": "django.db.backends.mysql", "CONN_MAX_AGE": None}
    options: dict[str, Any] = {"read_timeout": "7"}
    mysql.configure(
        config, options, Sources({"DB_WAIT_TIMEOUT": "600"}, {"statement_timeout": 1500})
    )
    assert config["CONN_MAX_AGE"] == 600 - mysql.WAIT_TIMEOUT_MARGIN
    assert options == {
        "read_timeout": 7,
        "connect_timeout": 5,
        "charset": "utf8mb4",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES', SESSION max_statement_time=1.5",
    }


def test_postgresql_normalize_moves_server_settings_into_options() -> None:
    options: dict[str, Any] = {"lock_timeout": "100", "sslmode": "require"}
    postgresql.normalize(options, {})
    assert options == {"sslmode": "require", "options": "-c lock_timeout=100"}


# -- a new engine is its package (settings module) and one registry line ---------------------

NEW_ENGINE = """
from dbconnmgr.backends.engine_settings import EngineSettings


def configure(config, options, src):
    options["sslmode"] = "require"
    options["connect_timeout"] = src.whole("DB_CONNECT_TIMEOUT", "connect_timeout") or 9


SETTINGS = EngineSettings(
    vendor="oracle",
    schemes=frozenset({"oracle"}),
    configure=configure,
    application_name=True,
)
"""


@pytest.fixture
def new_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A name no real engine package takes, so the test keeps working beside them.
    package = tmp_path / "zz_test_engine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(NEW_ENGINE)
    monkeypatch.setattr(
        dbconnmgr.backends, "__path__", [*dbconnmgr.backends.__path__, str(tmp_path)]
    )
    # ... and its one line in the registry of engines.
    listed = engines.Engine(
        "oracle", "dbconnmgr.backends.zz_test_engine", "OracleBackend",
        frozenset({"django.db.backends.oracle"}),
    )  # fmt: skip
    monkeypatch.setattr(engines, "ENGINES", (*engines.ENGINES, listed))
    monkeypatch.setitem(engines._BY_VENDOR, "oracle", listed)
    monkeypatch.setitem(engines._BY_ENGINE, "django.db.backends.oracle", listed)
    registry.all_engine_settings.cache_clear()
    registry._by_key.cache_clear()
    yield
    for name in ("dbconnmgr.backends.zz_test_engine.settings", "dbconnmgr.backends.zz_test_engine"):
        sys.modules.pop(name, None)
    registry.all_engine_settings.cache_clear()
    registry._by_key.cache_clear()


@pytest.mark.usefixtures("new_engine")
def test_an_engine_is_one_settings_module_in_its_package() -> None:
    db = database_config(env={"DATABASE_URL": "oracle://u:p@db:1521/app"}, service="etl")
    assert db["ENGINE"] == "django.db.backends.oracle"
    assert db["OPTIONS"] == {"sslmode": "require", "connect_timeout": 9}
    assert db["CONN_MAX_AGE"] == PROFILES["production"].conn_max_age  # no native pool
    found = check_database_settings({"default": db}, deploy=True)
    assert [m.id for m in found] == ["dbconnmgr.W011"]  # it declared application_name
