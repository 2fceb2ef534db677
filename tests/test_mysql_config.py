"""database_config() for mysql:// URLs and the MySQL system checks: pure, every stack."""

from __future__ import annotations

from typing import Any

import pytest

from dbconnmgr.checks.databases import check_database_settings
from dbconnmgr.database_settings import DEFAULT_WAIT_TIMEOUT, database_config

pytestmark = pytest.mark.engine_neutral

URL = "mysql://app:secret@db.internal:3306/shop"


def config(**env: str) -> dict[str, Any]:
    return database_config(env={"DATABASE_URL": URL, **env}, service="web")


def ids(db: dict[str, Any], **kwargs: Any) -> list[str]:
    found = check_database_settings({"default": db}, deploy=True, **kwargs)
    return [m.id for m in found if m.id]


def test_mysql_url_gets_timeouts_charset_strict_mode_and_no_pool() -> None:
    db = config()
    assert db["ENGINE"] == "django.db.backends.mysql"
    assert db["CONN_HEALTH_CHECKS"] is True
    assert 0 < db["CONN_MAX_AGE"] < DEFAULT_WAIT_TIMEOUT
    options = db["OPTIONS"]
    assert "pool" not in options and "application_name" not in options
    assert options["connect_timeout"] == 5 and options["charset"] == "utf8mb4"
    assert options["init_command"] == "SET sql_mode='STRICT_TRANS_TABLES'"
    assert ids(db) == []


@pytest.mark.parametrize("age", ["none", "86400"])
def test_conn_max_age_is_kept_below_wait_timeout(age: str) -> None:
    assert config(CONN_MAX_AGE=age)["CONN_MAX_AGE"] == DEFAULT_WAIT_TIMEOUT - 60
    assert config(CONN_MAX_AGE=age, DB_WAIT_TIMEOUT="600")["CONN_MAX_AGE"] == 540


def test_statement_read_write_timeouts_and_the_projects_init_command() -> None:
    db = database_config(
        env={
            "DATABASE_URL": URL + "?init_command=SET+time_zone%3D%27%2B00:00%27",
            "DB_STATEMENT_TIMEOUT": "30000",
            "DB_READ_TIMEOUT": "60",
            "DB_WRITE_TIMEOUT": "30",
        }
    )
    options = db["OPTIONS"]
    assert options["init_command"] == (
        "SET time_zone='+00:00'; SET sql_mode='STRICT_TRANS_TABLES', SESSION max_statement_time=30"
    )
    assert (options["read_timeout"], options["write_timeout"]) == (60, 30)


def test_a_pool_is_refused_for_mysql() -> None:
    with pytest.raises(Exception, match="native pool is for PostgreSQL"):
        config(DB_POOL="true")


@pytest.mark.parametrize("age", [None, DEFAULT_WAIT_TIMEOUT, 10 * DEFAULT_WAIT_TIMEOUT])
def test_w014_mysql_connections_outliving_wait_timeout(age: int | None) -> None:
    db = {**config(), "CONN_MAX_AGE": age}
    assert ids(db) == ["dbconnmgr.W014"]


def test_w010_asgi_with_persistent_mysql_connections() -> None:
    assert "dbconnmgr.W010" in ids(config(), asgi=True)
    assert ids(config(DB_ASGI="true"), asgi=True) == []


def test_w012_mysql_without_connect_timeout() -> None:
    db = config()
    del db["OPTIONS"]["connect_timeout"]
    assert ids(db) == ["dbconnmgr.W012"]
