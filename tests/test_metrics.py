"""The Prometheus endpoint: who may scrape, what it reports, and that promtool accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from devtools.system_packages import ensure_debian_packages, find_binary
from tests.conftest import ROOT, Sessions

TOKEN = "t0ken-for-the-metrics-endpoint-tests"
URL = "/dbconnmgr/metrics/"
RULES = ROOT / "docs" / "prometheus" / "dbconnmgr.rules.yml"
RULE_TESTS = ROOT / "docs" / "prometheus" / "dbconnmgr.rules.test.yml"


@pytest.fixture
def token_settings(settings):
    settings.DBCONNMGR = {"HEALTH_TOKENS": [TOKEN]}
    return settings


@pytest.fixture(scope="session")
def promtool() -> str:
    ensure_debian_packages({"promtool": "prometheus"})
    path = find_binary("promtool")
    assert path is not None
    return path


def scrape(**params: str) -> str:
    response = Client().get(URL, params, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def test_same_authentication_as_the_health_endpoint(token_settings) -> None:
    assert Client().get(URL).status_code == 401
    assert Client().get(URL, HTTP_AUTHORIZATION="Bearer wrong-token-xxxxxxxx").status_code == 401
    assert Client().post(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


@pytest.mark.django_db
def test_a_session_needs_the_view_permission_like_the_admin_page(
    token_settings, django_user_model
) -> None:
    plain = Client()
    plain.force_login(django_user_model.objects.create_user("plainstaff", is_staff=True))
    assert plain.get(URL).status_code == 403
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_connections"))
    allowed = Client()
    allowed.force_login(viewer)
    assert allowed.get(URL, {"alias": "default"}).status_code == 200


def test_server_gauges_count_the_sessions_by_postgres_exporter_labels(
    token_settings, sessions: Sessions
) -> None:
    sessions.open_many(3, "t-metrics-idle")
    text = scrape(alias="default")
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("pg_stat_activity_count{")
        and 'application_name="t-metrics-idle"' in line
        and 'state="idle"' in line
    )
    assert line.endswith(" 3.0")
    assert 'dbconnmgr_up{alias="default"} 1.0' in text
    assert 'pg_settings_max_connections{alias="default"}' in text
    assert 'dbconnmgr_usable_connections{alias="default"}' in text
    assert 'dbconnmgr_oldest_connection_seconds{alias="default"}' in text
    assert 'dbconnmgr_findings{alias="default",severity="ok"}' in text
    # this process's figures, for the same alias
    assert 'dbconnmgr_connection_failures_total{alias="default",cause="too_many_clients"}' in text
    assert 'dbconnmgr_connections_opened_total{alias="default"}' in text


def test_the_address_ends_with_a_slash_like_health_and_the_old_one_still_answers(
    token_settings,
) -> None:
    from django.urls import reverse

    assert reverse("dbconnmgr:metrics") == URL
    assert reverse("dbconnmgr:health") == "/dbconnmgr/health/"
    old = Client().get(URL.rstrip("/"), {"alias": "default"}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert old.status_code == 200 and b"dbconnmgr_up{" in old.content


def test_activity_series_sum_to_the_client_connections_and_the_ratio_is_rounded(
    token_settings, sessions: Sessions
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from dbconnmgr.metrics import scaled

    sessions.open_many(2, "t-metrics-sum")
    families = {f.name: f for f in text_string_to_metric_families(scrape(alias="default"))}
    activity = sum(s.value for s in families["pg_stat_activity_count"].samples)
    (clients,) = families["dbconnmgr_client_connections"].samples
    assert activity == clients.value  # the scrape's own connection in neither
    assert scaled(45.9, 100.0) == 0.459 and str(scaled(45.9, 100.0)) == "0.459"
    (ratio,) = families["dbconnmgr_utilization_ratio"].samples
    assert ratio.value == round(ratio.value, 3)


def test_unknown_alias_is_404(token_settings) -> None:
    response = Client().get(URL, {"alias": "nope"}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 404


def test_promtool_accepts_the_metrics_and_the_alert_rules(
    token_settings, promtool: str, tmp_path: Path
) -> None:
    exposition = scrape()
    check = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    # Exit 3 is lint only (1 would be a parse error). The one lint allowed is the name
    # postgres_exporter gives the same series: dashboards built on it keep working.
    problems = [line for line in (check.stdout + check.stderr).splitlines() if line.strip()]
    allowed = (
        "pg_stat_activity_count non-histogram and non-summary metrics should not have "
        '"_count" suffix'
    )
    assert check.returncode in (0, 3) and problems in ([], [allowed]), problems
    rules = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
        timeout=60, cwd=RULE_TESTS.parent,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_aas_counts_the_sessions_running_a_query_but_not_the_scrape(
    token_settings, sessions: Sessions
) -> None:
    sessions.open_many(2, "t-metrics-aas", state="active")
    text = scrape(alias="default")
    aas = next(line for line in text.splitlines() if line.startswith("dbconnmgr_aas{"))
    active = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("pg_stat_activity_count{") and 'state="active"' in line
    ]
    # the same snapshot and rule: every active client session, the scrape's own left out
    assert float(aas.rsplit(" ", 1)[1]) == sum(active) >= 2
    assert "avg_over_time(dbconnmgr_aas" in text  # the HELP says how to get the AAS
