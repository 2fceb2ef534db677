"""The health checks are declared once: codes, what lets an alert resolve, the docs' code
table, the one health path (PgBouncer's findings in /metrics too) and the aliases read."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from django.db import connections
from django.test import Client

from dbconnmgr import alerts, check_health, evaluate, take_snapshot
from dbconnmgr.admin import monitored_aliases
from dbconnmgr.cli import resolve_aliases
from dbconnmgr.core.capabilities import Capabilities
from dbconnmgr.core.checks import CHECKS, FAILURE_CODES, FINDING_CODES
from dbconnmgr.core.findings import FindingCode
from dbconnmgr.core.health import evaluate_unavailable
from dbconnmgr.core.thresholds import THRESHOLD_KINDS
from dbconnmgr.exceptions import ServerUnavailable
from dbconnmgr.health import readable_aliases
from dbconnmgr.metrics import scraped_aliases
from devtools.pgbouncerserver import PgBouncerServer
from devtools.pgserver import PgServer
from tests import alert_handlers
from tests.conftest import Sessions, database_alias

DOCS = Path(__file__).resolve().parent.parent / "docs"
RECORD = "tests.alert_handlers.record"
TOKEN = "t0ken-for-the-health-declaration-tests"


def test_every_code_is_declared_once_and_the_literal_lists_them() -> None:
    codes = [check.code for check in CHECKS]
    assert len(codes) == len(set(codes))
    # ``settings`` is the endpoint's finding for invalid settings, which no check makes.
    assert set(get_args(FindingCode)) == {*codes, "settings"}
    assert set(FINDING_CODES) == set(get_args(FindingCode))
    for check in CHECKS:
        assert set(check.thresholds) <= set(THRESHOLD_KINDS), check.code
        if check.capability is not None:
            assert check.capability in {f.name for f in dataclasses.fields(Capabilities)}
    read = {key for check in CHECKS for key in check.thresholds}
    assert read == set(THRESHOLD_KINDS), "a THRESHOLDS key no check reads"


@pytest.mark.parametrize(
    "kind", ["unreachable", "full", "reserved", "auth", "timeout", "setup", "other"]
)
def test_every_failure_kind_makes_exactly_one_finding(kind: str) -> None:
    report = evaluate_unavailable(ServerUnavailable("boom", kind=kind, alias="x"))  # type: ignore[arg-type]
    [finding] = report.findings
    assert finding.code in FAILURE_CODES


def test_a_configuration_error_alert_is_resolved_when_the_server_reads_again(
    health_alias: str, settings
) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60}}
    alert_handlers.RECEIVED.clear()
    alerts.reset()
    try:
        problem = ServerUnavailable("bad OPTIONS", kind="setup", alias=health_alias)
        alerts.dispatch(evaluate_unavailable(problem))
        alerts.dispatch(evaluate(take_snapshot(health_alias)))  # default thresholds: all ok
        got = [(a.status, a.finding.code) for a in alert_handlers.RECEIVED]
        assert got == [("firing", "configuration_error"), ("resolved", "configuration_error")]
    finally:
        alert_handlers.RECEIVED.clear()
        alerts.reset()


def documented_codes(page: str, heading: str) -> set[str]:
    """The backticked codes of the ``code`` rows of ``heading``'s section of ``page``."""
    text = (DOCS / page).read_text()
    section = text[text.index(heading) :]
    section = section[: section.find("\n#", 1)]
    codes: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `code`"):
            codes.update(re.findall(r"`([a-z_]+)`", line.split("|")[2]))
    return codes


def test_the_json_docs_list_exactly_the_declared_codes() -> None:
    assert documented_codes("json.md", "### finding (`FindingDoc`)") == set(FINDING_CODES)


def test_the_health_page_lists_every_check() -> None:
    text = (DOCS / "health.md").read_text()
    table = text[text.index("## The checks") : text.index("Notes:")]
    rows = set(re.findall(r"^\| `([a-z_*]+)`", table, re.M))
    server = {c.code for c in CHECKS if not c.code.startswith("pgbouncer_")}
    assert rows == server | {"pgbouncer_*"}


@pytest.fixture
def bounced(bouncer: PgBouncerServer, bouncer_upstream: PgServer, settings) -> Iterator[str]:
    """Alias ``bounced`` on the server behind the suite's PgBouncer, with its console set."""
    with database_alias("bounced", bouncer_upstream.url) as alias:
        settings.DBCONNMGR = {
            "HEALTH_TOKENS": [TOKEN],
            "PGBOUNCER": {
                alias: {"CONSOLE": bouncer.console_url(), "SERVER": bouncer_upstream.url}
            },
        }
        yield alias


def findings_metric(text: str, alias: str) -> dict[str, float]:
    pattern = rf'^dbconnmgr_findings\{{alias="{alias}",severity="(\w+)"\}} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


def test_metrics_findings_include_pgbouncer_findings(bounced: str) -> None:
    response = Client().get(
        "/dbconnmgr/metrics", {"alias": bounced}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200, response.content
    counted = findings_metric(response.content.decode(), bounced)
    report = check_health(bounced)
    assert any(f.code.startswith("pgbouncer_") for f in report.findings)
    assert sum(counted.values()) == len(report.findings)


@pytest.fixture
def broken_alias() -> Iterator[str]:
    """Alias ``broken`` whose ENGINE cannot be loaded, and ``lite`` on SQLite."""
    connections.settings["broken"] = {
        **connections.settings["default"],
        "ENGINE": "no.such.backend",
    }
    connections.settings["lite"] = {
        **connections.settings["default"],
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
    }
    try:
        yield "broken"
    finally:
        del connections.settings["broken"]
        del connections.settings["lite"]


def test_one_answer_to_which_aliases_are_read(broken_alias: str, settings) -> None:
    read = readable_aliases()
    assert broken_alias in read and "lite" not in read and "default" in read
    assert scraped_aliases() == read
    assert resolve_aliases("all") == read
    assert monitored_aliases() == read
    settings.DBCONNMGR = {"HEALTH_TOKENS": [TOKEN]}
    response = Client().get(
        "/dbconnmgr/metrics", {"alias": broken_alias}, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200, response.content
    text = response.content.decode()
    assert f'dbconnmgr_up{{alias="{broken_alias}"}} 0.0' in text
    assert findings_metric(text, broken_alias)["unknown"] == 1
    [finding] = check_health(broken_alias).findings
    assert finding.code == "configuration_error"


def test_a_pgbouncer_unavailable_alert_is_resolved_when_the_console_reads_again(
    health_alias: str, settings
) -> None:
    from datetime import UTC, datetime

    from dbconnmgr.core.pooler import PoolerSnapshot, PoolerUnavailable

    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60}}
    alert_handlers.RECEIVED.clear()
    alerts.reset()
    snap = take_snapshot(health_alias)
    down = PoolerUnavailable(health_alias, "127.0.0.1:1", "unreachable", "console refused")
    back = PoolerSnapshot(
        health_alias, "127.0.0.1:1", "PgBouncer 1.18.0", datetime.now(UTC), (), {}
    )
    try:
        alerts.dispatch(evaluate(snap, pooler=down))
        alerts.dispatch(evaluate(snap, pooler=back))
        got = [(a.status, a.finding.code) for a in alert_handlers.RECEIVED]
        assert got == [("firing", "pgbouncer_unavailable"), ("resolved", "pgbouncer_unavailable")]
    finally:
        alert_handlers.RECEIVED.clear()
        alerts.reset()


def test_at_the_warning_threshold_is_a_warning_everywhere(
    held: Sessions, health_alias: str
) -> None:
    from dbconnmgr.core.dashboard import utilization_bar
    from dbconnmgr.render import utilization_style

    held.open("t-at-warning", "idle")
    snap = take_snapshot(health_alias)
    at = snap.utilization_percent
    assert 0 < at < 100
    t = {"UTILIZATION_WARNING": at, "UTILIZATION_CRITICAL": 100}
    by_code = {f.code: f for f in evaluate(snap, t).findings}
    assert by_code["utilization"].severity.label == "warning"
    assert utilization_bar(snap, t).level == "warning"
    assert utilization_style(at, t) == "yellow"


@pytest.mark.django_db
def test_a_broken_engine_is_a_configuration_error_for_the_api_and_the_admin_page(
    broken_alias: str, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    from dbconnmgr import check_connection_health

    doc = check_connection_health(broken_alias)  # used to raise ImproperlyConfigured
    assert doc["status"] == "unknown" and doc["vendor"] is None
    assert [f["code"] for f in doc["findings"]] == ["configuration_error"]

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_connections"))
    client = Client()
    client.force_login(user)
    page = client.get(f"/admin/dbconnmgr/connections/{broken_alias}/")
    assert page.status_code == 200
    assert "bad configuration" in page.content.decode()
