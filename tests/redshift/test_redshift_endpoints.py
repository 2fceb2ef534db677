"""The health endpoint, /metrics and the admin page on a Redshift alias (emulated)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.redshift.conftest import RsSessions

TOKEN = "t0ken-for-the-redshift-endpoint-tests"


@pytest.fixture
def token_settings(settings: Any) -> Any:
    settings.DBCONNMGR = {"HEALTH_TOKENS": [TOKEN]}
    return settings


def test_health_endpoint_and_metrics_read_a_redshift_alias(
    token_settings: Any, rs_alias: str, rs_sessions: RsSessions
) -> None:
    rs_sessions.open_many(2, "idle")
    bearer = f"Bearer {TOKEN}"
    health = Client().get(f"/dbconnmgr/health/{rs_alias}/", HTTP_AUTHORIZATION=bearer)
    assert health.status_code == 200, health.content
    assert health.json()["vendor"] == "redshift"
    metrics = Client().get("/dbconnmgr/metrics", {"alias": rs_alias}, HTTP_AUTHORIZATION=bearer)
    text = metrics.content.decode()
    assert f'dbconnmgr_up{{alias="{rs_alias}"}} 1.0' in text
    assert f'dbconnmgr_usable_connections{{alias="{rs_alias}"}} 2000.0' in text


@pytest.mark.django_db
def test_the_admin_page_shows_a_redshift_alias(rs_alias: str, rs_sessions: RsSessions) -> None:
    rs_sessions.open("idle")
    staff = User.objects.create_superuser("rs-admin", "rs@example.invalid", "pw")
    client = Client()
    client.force_login(staff)
    response = client.get(f"/admin/dbconnmgr/connections/{rs_alias}/")
    assert response.status_code == 200, response.content[:500]
    assert b"Amazon Redshift" in response.content
