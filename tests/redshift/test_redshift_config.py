"""``database_config()`` for ``redshift://`` URLs, the seed's pool parameters, and E030."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from dbconnmgr import take_snapshot
from dbconnmgr.backends.redshift.settings import REDSHIFT_ENGINE
from dbconnmgr.checks.databases import check_database_settings
from dbconnmgr.database_settings import database_config
from devtools.redshiftemu import RedshiftEmulation


def config(url: str, **env: str) -> dict[str, Any]:
    return database_config(env={"DATABASE_URL": url, **env})


@contextlib.contextmanager
def configured(alias: str, settings: dict[str, Any]) -> Iterator[str]:
    local = connections._connections  # type: ignore[attr-defined]
    connections.settings[alias] = connections.configure_settings(
        {"default": {"ENGINE": "django.db.backends.dummy"}, alias: settings}
    )[alias]
    try:
        yield alias
    finally:
        conn = getattr(local, alias, None)
        if conn is not None:
            conn.close()
            if conn.pool is not None:
                conn.close_pool()
            delattr(local, alias)
        connections.settings.pop(alias, None)


def test_a_redshift_url_builds_a_working_pooled_alias_with_the_seeds_parameters(
    emulation: RedshiftEmulation,
) -> None:
    """pool_size + max_overflow = the most connections per process; pool_timeout the wait;
    pool_recycle the lifetime; pool_pre_ping a check before each checkout."""
    settings = config(
        emulation.url + "?pool_size=2&max_overflow=3",
        DB_REDSHIFT_NODE_TYPE="ra3.xlplus",
        DB_POOL_TIMEOUT="4",
        DB_POOL_RECYCLE="1800",
        DB_POOL_PRE_PING="true",
        DB_STATEMENT_TIMEOUT="30000",
    )
    assert settings["ENGINE"] == REDSHIFT_ENGINE
    pool = settings["OPTIONS"]["pool"]
    assert (pool["min_size"], pool["max_size"], pool["timeout"]) == (2, 5, 4.0)
    assert pool["max_lifetime"] == 1800.0
    assert settings["CONN_HEALTH_CHECKS"] is True
    assert settings["OPTIONS"]["node_type"] == "ra3.xlplus"
    assert settings["OPTIONS"]["statement_timeout"] == 30000
    assert "options" not in settings["OPTIONS"]  # no startup-packet settings on Redshift
    with configured("rs_url", settings) as alias:
        connection = connections[alias]
        assert connection.vendor == "redshift"
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "30s"
        snapshot = take_snapshot(alias)
        assert snapshot.vendor == "redshift" and snapshot.limits.max_connections == 2000
        assert check_database_settings({alias: settings}) == []


def test_the_limit_comes_from_the_url_query_too() -> None:
    settings = config("redshift://u:p@example.invalid:5439/dev?max_connections=500")
    assert settings["OPTIONS"]["max_connections"] == 500
    assert settings["ENGINE"] == REDSHIFT_ENGINE


def test_idle_in_transaction_timeout_is_refused_naming_the_key() -> None:
    with pytest.raises(ImproperlyConfigured, match="DB_IDLE_IN_TRANSACTION_TIMEOUT=60000") as e:
        config(
            "redshift://u:p@example.invalid:5439/dev",
            DB_REDSHIFT_NODE_TYPE="dc2.large",
            DB_IDLE_IN_TRANSACTION_TIMEOUT="60000",
        )
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({}, "does not show its connection limit"),
        ({"node_type": "ra3.large"}, "unknown or unpublished Redshift node type 'ra3.large'"),
        ({"max_connections": 0}, "whole number from 1 to 2000"),
        ({"max_connections": 2001}, "whole number from 1 to 2000"),
    ],
)
def test_e030_refuses_a_missing_or_impossible_limit(options: dict[str, Any], fragment: str) -> None:
    db = {"ENGINE": REDSHIFT_ENGINE, "NAME": "dev", "OPTIONS": options}
    messages = check_database_settings({"warehouse": db})
    assert [m.id for m in messages] == ["dbconnmgr.E030"]
    assert fragment in messages[0].msg


def test_e030_accepts_a_published_node_type_or_a_number() -> None:
    for options in ({"node_type": "RA3.4XLARGE"}, {"max_connections": 1500}):
        db = {"ENGINE": REDSHIFT_ENGINE, "NAME": "dev", "OPTIONS": options}
        assert check_database_settings({"warehouse": db}) == []


def test_one_startup_line_says_how_each_alias_holds_its_connections() -> None:
    """The seed's "check whether pooling is working": the same line for every engine."""
    from dbconnmgr.database_settings import describe_pooling

    pooled = config(
        "redshift://u:p@example.invalid:5439/dev?pool_size=2&max_overflow=3",
        DB_REDSHIFT_NODE_TYPE="ra3.xlplus", DB_POOL_RECYCLE="1800", DB_POOL_PRE_PING="true",
    )  # fmt: skip
    assert describe_pooling("warehouse", pooled) == (
        "database 'warehouse' (dbconnmgr.db.redshift): native pool, min_size 2, max_size 5 "
        "(the most connections per process), timeout 10s, max_lifetime 1800s; connections "
        "checked before use"
    )
    unpooled = config("mysql://u:p@example.invalid/shop", DB_POOL="false")
    assert describe_pooling("shop", unpooled).startswith(
        "database 'shop' (django.db.backends.mysql): no pool, each connection lives for "
    )


def test_a_management_command_names_itself_in_application_name(
    emulation: RedshiftEmulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on PostgreSQL: ``web:migrate``, so a migration's sessions are not the web's."""
    env = {"DATABASE_URL": emulation.url, "DB_REDSHIFT_NODE_TYPE": "ra3.4xlarge"}
    assert database_config(env=env, service="web")["OPTIONS"]["application_name"] == "web"
    monkeypatch.setattr(sys, "argv", ["manage.py", "migrate"])
    settings = database_config(env=env, service="web")
    assert settings["OPTIONS"]["application_name"] == "web:migrate"
    named = database_config(env={**env, "DB_APPLICATION_NAME": "ingest"})
    assert named["OPTIONS"]["application_name"] == "ingest:migrate"
    with configured("rs_named", settings) as alias, connections[alias].cursor() as cursor:
        # the server got it: the emulation is PostgreSQL underneath, which keeps it
        cursor.execute("SHOW application_name")
        assert cursor.fetchone()[0] == "web:migrate"


_STARTUP_SCRIPT = """
import sys
import django
from django.conf import settings
from dbconnmgr.database_settings import database_config

urls = {
    "default": "postgres://app:pw@db.example/shop?pool_size=4&max_overflow=2",
    "legacy": "mysql://app:pw@mariadb.example/shop",
    "warehouse": "redshift://etl:pw@cluster.example:5439/dev?node_type=ra3.4xlarge",
}
settings.configure(
    DATABASES={alias: database_config(env={"DATABASE_URL": url}) for alias, url in urls.items()},
    INSTALLED_APPS=["dbconnmgr"],
    LOGGING={
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "loggers": {"dbconnmgr": {"handlers": ["console"], "level": sys.argv[1]}},
    },
)
django.setup()
"""


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_the_startup_line_is_logged_for_every_engine_at_debug(level: str) -> None:
    """docs/configuration.md: the ``dbconnmgr`` logger at DEBUG shows it, once per alias
    (PostgreSQL, MariaDB and Redshift alike); at INFO, as the README's LOGGING, it is quiet."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")
    }
    result = subprocess.run(
        [sys.executable, "-c", _STARTUP_SCRIPT, level],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    if level == "INFO":
        assert lines == []
        return
    assert [line.split(" (")[0] for line in lines] == [
        "database 'default'", "database 'legacy'", "database 'warehouse'",
    ]  # fmt: skip
    assert "(django.db.backends.postgresql): native pool, min_size 4, max_size 6" in lines[0]
    assert "(django.db.backends.mysql): no pool, each connection lives" in lines[1]
    assert "(dbconnmgr.db.redshift): native pool" in lines[2]
