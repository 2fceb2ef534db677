"""Setup errors are UNKNOWN with one line: never CRITICAL "unreachable", never a traceback.

Each case is produced for real against the test server (roles, privileges) or through a
settings override; the health of the alias is unknown, its finding ``configuration_error``.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db import connections

from dbconnmgr import check_connection_health
from dbconnmgr.core.documents import HealthDoc
from devtools.pgserver import PgServer
from tests.conftest import database_alias


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
