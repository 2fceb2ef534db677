"""The HTTP health endpoint: who may ask, what it answers, and what it never shows."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpResponse
from django.test import Client, RequestFactory

from dbconnmgr.views import health

TOKEN = "t0ken-for-the-health-endpoint-tests"
URL = "/dbconnmgr/health/"


@pytest.fixture
def token_settings(settings):
    settings.DBCONNMGR = {
        "HEALTH_TOKENS": [TOKEN],
        "THRESHOLDS": {"IDLE_RATIO_WARNING": None},  # the shared server's other sessions
    }
    return settings


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_credentials_401(token_settings) -> None:
    response = Client().get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="dbconnmgr"'
    assert response.json() == {"error": "authentication required: log in as staff or send a token"}
    assert Client().get(URL + "default/").status_code == 401  # no alias enumeration


def test_wrong_token_401_and_no_tokens_configured(token_settings, settings) -> None:
    assert Client().get(URL, headers=bearer("nope")).status_code == 401
    assert Client().get(URL, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    settings.DBCONNMGR = {}
    assert Client().get(URL, headers=bearer(TOKEN)).status_code == 401


def _as(user: User | AnonymousUser) -> HttpResponse:
    request = RequestFactory().get(URL)
    request.user = user
    return health(request)


def test_non_staff_403_staff_200(token_settings) -> None:
    assert _as(AnonymousUser()).status_code == 401
    assert _as(User(username="someone", is_staff=False)).status_code == 403
    response = _as(User(username="ops", is_staff=True))
    assert response.status_code == 200
    assert json.loads(response.content)["status"] == "ok"


def test_token_gets_the_document(token_settings) -> None:
    response = Client().get(URL, headers=bearer(TOKEN))
    assert response.status_code == 200, response.content
    assert "no-cache" in response["Cache-Control"]
    payload = response.json()
    assert payload["status"] == "ok"
    assert payload["postgresql_info"]["usable_connections"] > 0
    assert Client().post(URL, headers=bearer(TOKEN)).status_code == 405
    response = Client().get(URL + "nope/", headers=bearer(TOKEN))
    assert response.status_code == 404
    assert "unknown database alias 'nope'" in response.json()["error"]


@contextlib.contextmanager
def secret_lock_wait(dsn: str, marker: str) -> Iterator[None]:
    """A session idle in a transaction holding a lock another waits for, both over TCP from
    127.0.0.1 and with ``marker`` in their query text."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS t_endpoint_lock (secret text)")
    blocker = psycopg.connect(dsn, application_name="t-endpoint-blocker")
    blocker.execute(f"LOCK TABLE t_endpoint_lock /* {marker} */")
    waiter = psycopg.connect(dsn, application_name="t-endpoint-waiter")

    def wait() -> None:
        with contextlib.suppress(psycopg.Error):
            waiter.execute(f"SELECT * FROM t_endpoint_lock WHERE secret = '{marker}'")

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        with psycopg.connect(dsn, autocommit=True) as admin:
            while not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                (waiter.info.backend_pid,),
            ).fetchone():
                assert time.monotonic() < deadline
                time.sleep(0.02)
        yield
    finally:
        blocker.rollback()
        thread.join(10)
        waiter.close()
        blocker.close()


def test_unhealthy_is_503_and_nothing_leaks(token_settings, dsn: str) -> None:
    marker = "s3cr3t-card-4111111111111111"
    token_settings.DBCONNMGR = {
        "HEALTH_TOKENS": [TOKEN],
        "THRESHOLDS": {
            "IDLE_RATIO_WARNING": None,
            "IDLE_IN_TRANSACTION_WARNING": 0.1,
            "IDLE_IN_TRANSACTION_CRITICAL": 0.2,
            "LOCK_WAIT_WARNING": 0.1,
        },
    }
    with secret_lock_wait(dsn, marker):
        time.sleep(0.3)
        response = Client().get(URL, headers=bearer(TOKEN))
        staff = _as(User(username="ops", is_staff=True))
    assert response.status_code == 503
    payload = response.json()
    assert payload["status"] == "critical"
    codes = {f["code"]: f for f in payload["findings"]}
    assert codes["idle_in_transaction"]["severity"] == "critical"
    assert codes["lock_waits"]["severity"] == "warning"
    names = {s["application_name"] for s in codes["idle_in_transaction"]["data"]["sessions"]}
    assert "t-endpoint-blocker" in names  # the findings do name sessions...
    for body in (response.content.decode(), staff.content.decode()):
        assert marker not in body  # ...but never their query text
        assert "t_endpoint_lock" not in body
        assert "127.0.0.1" not in body  # nor the client address
        assert "client_addr" not in body
        assert '"query"' not in body


def test_health_tokens_as_a_string_refuses_everyone(settings, caplog) -> None:
    # A string used to make every single character a valid token (and itself invalid).
    settings.DBCONNMGR = {"HEALTH_TOKENS": TOKEN}
    with caplog.at_level(logging.ERROR, logger="dbconnmgr"):
        for sent in ("t", "0", TOKEN):
            response = Client().get(URL, headers=bearer(sent))
            assert response.status_code == 401, sent
            assert response.json() == {"error": "health endpoint misconfigured: see the server log"}
        staff = _as(User(username="ops", is_staff=True))
    assert staff.status_code == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "dbconnmgr"]
    assert len(lines) == 4
    assert all("DBCONNMGR['HEALTH_TOKENS'] must be a list of strings" in line for line in lines)
    assert all(TOKEN not in line for line in lines)  # the secret is not logged
    assert not any(r.exc_info for r in caplog.records)


def test_invalid_thresholds_are_unknown_503_not_500(token_settings, caplog) -> None:
    token_settings.DBCONNMGR = {
        "HEALTH_TOKENS": [TOKEN],
        "THRESHOLDS": {"UTILIZATION_WARNING": 90, "UTILIZATION_CRITICAL": 80},
    }
    with caplog.at_level(logging.ERROR, logger="dbconnmgr"):
        response = Client(raise_request_exception=False).get(URL, headers=bearer(TOKEN))
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["status"] == "unknown"
    assert payload["status_code"] == 3
    [finding] = payload["findings"]
    assert finding["code"] == "settings"
    assert "DBCONNMGR['THRESHOLDS']" in finding["message"]
    assert finding["data"] == {"key": "THRESHOLDS"}
    [record] = [r for r in caplog.records if r.name == "dbconnmgr"]
    assert "UNKNOWN" in record.getMessage() and record.exc_info is None


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options"])
def test_unsafe_methods_get_405_json_not_a_csrf_page(token_settings, method: str) -> None:
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(URL, headers=bearer(TOKEN))
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": f"method {method.upper()} not allowed: use GET or HEAD"}
    assert Client().head(URL, headers=bearer(TOKEN)).status_code == 200


POOLED_SCRIPT = """
import json
import logging
import django
django.setup()
from django.contrib.auth.models import User
from django.db import connections
from django.test import RequestFactory
import dbconnmgr
from dbconnmgr.views import health
from dbconnmgr.internals import open_pool

health_doc = dbconnmgr.check_connection_health("pooled")
request = RequestFactory().get("/dbconnmgr/health/pooled/")
request.user = User(username="ops", is_staff=True)
response = health(request, "pooled")
print(json.dumps({
    "status": health_doc["status"],
    "endpoint": response.status_code,
    "pool_opened": open_pool(connections["pooled"]) is not None,
}))
"""


def test_pooled_alias_is_read_without_the_application_pool(dsn: str) -> None:
    """check_connection_health() and the endpoint read a pooled alias over the CLI's private
    connection: they neither wait for nor open the app's pool (its timeout was the answer
    time when the pool was busy or the server silent)."""
    from tests.conftest import run_with_pooled_alias

    data = run_with_pooled_alias(POOLED_SCRIPT, dsn)
    assert data["status"] in ("ok", "warning")
    assert data["endpoint"] == 200
    assert data["pool_opened"] is False
