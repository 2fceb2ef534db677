"""Setup errors are UNKNOWN with one line: never CRITICAL "unreachable", never a traceback.

Each case is produced for real against the test server (roles, privileges) or through a
settings override; the health of the alias is unknown, its finding ``configuration_error``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connections

from dbconnmgr import check_connection_health
from dbconnmgr.core.documents import HealthDoc
from devtools.pgserver import PgServer
from tests.conftest import database_alias, manage


@pytest.fixture(scope="module")
def roles(health_server: PgServer) -> Iterator[PgServer]:
    with psycopg.connect(health_server.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS t_noconnect")
        admin.execute("CREATE DATABASE t_noconnect")
        admin.execute("REVOKE CONNECT ON DATABASE t_noconnect FROM PUBLIC")
        admin.execute("DROP ROLE IF EXISTS t_nologin")
        admin.execute("CREATE ROLE t_nologin NOLOGIN PASSWORD 'pw'")
        admin.execute("DROP ROLE IF EXISTS t_plainlogin")
        admin.execute("CREATE ROLE t_plainlogin LOGIN PASSWORD 'pw'")
    yield health_server


def assert_unknown_setup(health: HealthDoc, fragment: str) -> None:
    assert health["status"] == "unknown", health["summary"]
    assert health["status_code"] == 3
    [finding] = health["findings"]
    assert finding["code"] == "configuration_error", finding
    assert fragment in finding["message"]
    assert "\n" not in finding["message"]


def test_no_connect_privilege(roles: PgServer) -> None:
    with database_alias("noconnect", roles.url_for("t_plainlogin", "pw", "t_noconnect")):
        assert_unknown_setup(check_connection_health("noconnect"), "CONNECT privilege")


def test_nologin_role(roles: PgServer) -> None:
    with database_alias("nologin", roles.url_for("t_nologin", "pw")):
        assert_unknown_setup(check_connection_health("nologin"), "NOLOGIN")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"options": "-c no_such_setting=1"}, "options"),
        ({"options": "-c statement_timeout=soon"}, "options"),
        ({"sslmode": "sometimes"}, "sslmode"),
        ({"no_such_option": "1"}, "unknown connection option"),
    ],
)
def test_bad_options(roles: PgServer, options: dict[str, str], fragment: str) -> None:
    with database_alias("badopts", roles.url):
        connections.settings["badopts"]["OPTIONS"].update(options)
        assert_unknown_setup(check_connection_health("badopts"), fragment)


def test_missing_name(roles: PgServer) -> None:
    with database_alias("noname", roles.url):
        connections.settings["noname"]["NAME"] = ""
        assert_unknown_setup(check_connection_health("noname"), "bad configuration")


# -- the same through manage.py, as a user meets them -----------------------------------


def manage_broken(action: str, database: dict[str, Any]) -> tuple[int, str, str]:
    """``manage.py db_connections --action=ACTION --database=broken`` where ``broken`` is
    ``default`` changed by ``database`` (tests/settings_database.py)."""
    result = manage(
        "db_connections", f"--action={action}", "--database=broken",
        settings_module="tests.settings_database",
        extra_env={"BROKEN_DATABASE_JSON": json.dumps(database)},
    )  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def assert_one_line_unknown(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 3, (out, err)
    assert "Traceback" not in out + err
    [line] = (out + err).strip().splitlines()
    assert "bad configuration" in line and fragment in line, line


@pytest.mark.parametrize("action", ["health", "status"])
@pytest.mark.parametrize(
    ("engine", "fragment"),
    [
        # Django's mysql backend needs MySQLdb (mysqlclient), which the test venvs lack
        ("django.db.backends.mysql", "MySQLdb"),
        ("no.such.backend", "isn't an available database backend"),
    ],
    ids=["missing-driver", "unknown-engine"],
)
def test_unknown_engine_or_missing_driver_via_manage_py(
    action: str, engine: str, fragment: str
) -> None:
    if engine.endswith(".mysql") and importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("mysqlclient is installed: no missing driver to test")
    assert_one_line_unknown(*manage_broken(action, {"ENGINE": engine}), fragment)


def test_bad_options_via_manage_py() -> None:
    bad = {"OPTIONS": {"options": "-c statement_timeout=soon"}}
    code, out, err = manage_broken("health", bad)
    assert code == 3 and err == "", (out, err)
    assert "Traceback" not in out
    first = out.splitlines()[0]  # the Nagios line; the table of findings follows
    assert first.startswith("UNKNOWN: broken: 1 unknown"), first
    assert "bad OPTIONS['options']" in first and "statement_timeout" in first, first
    assert "configuration_error" in out
    code, out, err = manage_broken("status", bad)
    assert code == 3 and out == "", (out, err)
    [line] = err.splitlines()
    assert "bad OPTIONS['options']" in line, line
