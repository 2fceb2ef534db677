"""Alerts: cooldown, escalation, recovery, isolation of failing handlers, built-in handlers."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import django
import pytest
from django.core import mail

from dbconnmgr import alerts, check_health, evaluate, take_snapshot
from dbconnmgr.alerts import Alert, AlertDispatcher
from dbconnmgr.core.health import Severity
from dbconnmgr.signals import connection_alert
from devtools.pgserver import free_port
from tests import alert_handlers
from tests.conftest import Sessions, database_alias

RECORD = "tests.alert_handlers.record"
IIT = {"IDLE_IN_TRANSACTION_WARNING": 1, "IDLE_IN_TRANSACTION_CRITICAL": 30}
IIT_CRITICAL = {"IDLE_IN_TRANSACTION_WARNING": 0.5, "IDLE_IN_TRANSACTION_CRITICAL": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    alert_handlers.RECEIVED.clear()
    alerts.reset()
    yield
    alerts.reset()


def sent() -> list[tuple[str, str, str]]:
    got = [(a.status, a.finding.key, a.severity.label) for a in alert_handlers.RECEIVED]
    alert_handlers.RECEIVED.clear()
    return got


def test_once_per_cooldown_escalation_at_once_and_one_resolved(
    held: Sessions, health_alias: str, settings
) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60}}
    clock = Clock()
    dispatcher = AlertDispatcher(clock)
    session = held.open("t-alert", "idle in transaction")
    time.sleep(1.1)

    dispatcher.dispatch(evaluate(take_snapshot(health_alias), IIT))
    assert sent() == [("firing", "idle_in_transaction", "warning")]
    for step in (1, 30, 59):  # still a problem, within the cooldown: silence
        clock.now = 1000 + step
        dispatcher.dispatch(evaluate(take_snapshot(health_alias), IIT))
    assert sent() == []
    clock.now = 1061  # cooldown over, still there: a reminder
    dispatcher.dispatch(evaluate(take_snapshot(health_alias), IIT))
    assert sent() == [("firing", "idle_in_transaction", "warning")]
    clock.now = 1062  # worse: sent at once, cooldown or not
    dispatcher.dispatch(evaluate(take_snapshot(health_alias), IIT_CRITICAL))
    assert sent() == [("firing", "idle_in_transaction", "critical")]
    clock.now = 1063  # back to warning within the critical's cooldown: nothing new
    dispatcher.dispatch(evaluate(take_snapshot(health_alias), IIT))
    assert sent() == []

    session.conn.rollback()
    clock.now = 1064
    dispatcher.dispatch(evaluate(take_snapshot(health_alias), IIT))
    [alert] = alert_handlers.RECEIVED
    assert sent() == [("resolved", "idle_in_transaction", "ok")]
    assert alert.previous is Severity.CRITICAL
    assert "RESOLVED idle_in_transaction (was critical)" in alert.text
    for step in (65, 200, 500):
        clock.now = 1000 + step
        dispatcher.dispatch(evaluate(take_snapshot(health_alias), IIT))
    assert sent() == []


def test_a_flapping_finding_is_not_re_sent_within_the_cooldown(
    held: Sessions, health_alias: str, settings
) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60}}
    clock = Clock()
    dispatcher = AlertDispatcher(clock)
    session = held.open("t-alert-flap", "idle in transaction")
    time.sleep(1.1)
    problem = evaluate(take_snapshot(health_alias), IIT)
    session.conn.rollback()
    clear = evaluate(take_snapshot(health_alias), IIT)
    assert problem.status is Severity.WARNING
    assert clear.status is Severity.OK

    dispatcher.dispatch(problem)
    clock.now += 1
    dispatcher.dispatch(clear)
    assert sent() == [
        ("firing", "idle_in_transaction", "warning"),
        ("resolved", "idle_in_transaction", "ok"),
    ]
    for _ in range(5):  # back and forth every sample, within the cooldown: silence
        clock.now += 1
        dispatcher.dispatch(problem)
        clock.now += 1
        dispatcher.dispatch(clear)
    assert sent() == []
    clock.now += 60  # cooldown over: it is news again
    dispatcher.dispatch(problem)
    assert sent() == [("firing", "idle_in_transaction", "warning")]


def test_process_dispatcher_with_real_time(held: Sessions, health_alias: str, settings) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 1}}
    held.open("t-alert-rt", "idle in transaction")
    time.sleep(1.1)
    report = evaluate(take_snapshot(health_alias), IIT)
    alerts.dispatch(report)
    alerts.dispatch(report)
    assert len(sent()) == 1
    time.sleep(1.1)
    alerts.dispatch(report)
    assert len(sent()) == 1


def test_server_down_does_not_resolve_other_findings(
    held: Sessions, health_alias: str, settings
) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "COOLDOWN": 60}}
    dispatcher = AlertDispatcher(Clock())
    tight = {"UTILIZATION_WARNING": 5, "UTILIZATION_CRITICAL": 50}
    held.open("t-alert-down")
    dispatcher.dispatch(evaluate(take_snapshot(health_alias), tight))
    assert sent() == [("firing", "utilization", "warning")]

    with database_alias("health", f"postgres://postgres:x@127.0.0.1:{free_port()}/postgres"):
        down = check_health("health")
    dispatcher.dispatch(down)
    assert sent() == [("firing", "server_unreachable", "critical")]

    back = evaluate(take_snapshot(health_alias))  # default thresholds: all ok
    dispatcher.dispatch(back)
    assert sorted(sent()) == [
        ("resolved", "server_unreachable", "ok"),
        ("resolved", "utilization", "ok"),
    ]


def test_min_severity_and_subjects(held: Sessions, health_alias: str, settings) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": [RECORD], "MIN_SEVERITY": "critical"}}
    held.open_many(2, "t-alert-min")  # 2 of 17 usable: 11.8 %
    snap = take_snapshot(health_alias)
    alerts.dispatch(evaluate(snap, {"UTILIZATION_WARNING": 5}))
    assert sent() == []
    alerts.dispatch(evaluate(snap, {"UTILIZATION_WARNING": 5, "UTILIZATION_CRITICAL": 10}))
    assert sent() == [("firing", "utilization", "critical")]


def test_a_failing_handler_is_isolated(
    held: Sessions, health_alias: str, settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DBCONNMGR = {
        "ALERTS": {
            "HANDLERS": [
                "tests.alert_handlers.explode",
                "no.such.module.handler",
                {"HANDLER": "tests.alert_handlers.Tagged", "OPTIONS": {"unexpected": 1}},
                RECORD,
            ]
        }
    }
    held.open("t-alert-fail")

    def bad_receiver(sender: Any, alert: Alert, **kwargs: Any) -> None:
        raise RuntimeError("receiver exploded")

    connection_alert.connect(bad_receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="dbconnmgr.alerts"):
            alerts.dispatch(evaluate(take_snapshot(health_alias), {"UTILIZATION_WARNING": 5}))
    finally:
        connection_alert.disconnect(bad_receiver)
    assert sent() == [("firing", "utilization", "warning")]
    text = caplog.text
    assert "handler tests.alert_handlers.explode failed" in text
    assert "handler exploded" in text
    assert "'no.such.module.handler' could not be loaded" in text
    assert "tests.alert_handlers.Tagged" in text  # bad OPTIONS: logged, skipped
    assert "receiver exploded" in text


def test_signal_is_sent_for_every_alert(held: Sessions, health_alias: str, settings) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": []}}
    got: list[Alert] = []

    def receiver(sender: Any, alert: Alert, **kwargs: Any) -> None:
        got.append(alert)

    connection_alert.connect(receiver)
    try:
        session = held.open("t-alert-signal", "idle in transaction")
        time.sleep(1.1)
        alerts.dispatch(evaluate(take_snapshot(health_alias), IIT))
        session.conn.rollback()
        alerts.dispatch(evaluate(take_snapshot(health_alias), IIT))
    finally:
        connection_alert.disconnect(receiver)
    assert [(a.status, a.finding.code) for a in got] == [
        ("firing", "idle_in_transaction"),
        ("resolved", "idle_in_transaction"),
    ]
    assert got[0].finding.data["sessions"][0]["pid"] == session.pid


def test_logging_handler(
    caplog: pytest.LogCaptureFixture, held: Sessions, health_alias: str
) -> None:
    held.open("t-alert-log")
    snap = take_snapshot(health_alias)
    with caplog.at_level(logging.INFO, logger="dbconnmgr.alerts"):
        alerts.dispatch(evaluate(snap, {"UTILIZATION_WARNING": 5}))  # default handler
        alerts.dispatch(evaluate(snap))
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records[0][0] == "WARNING"
    assert records[0][1].startswith("[dbconnmgr] health: WARNING utilization: ")
    assert "of 17 usable slots in use" in records[0][1]
    assert records[1] == ("INFO", records[1][1])
    assert "RESOLVED utilization (was warning)" in records[1][1]


def test_mail_admins_handler(held: Sessions, health_alias: str, settings) -> None:
    # Django 6 takes plain addresses (pairs are deprecated); 5.2 needs (name, address).
    modern = django.VERSION >= (6, 0)
    settings.ADMINS = ["ops@example.com"] if modern else [("Ops", "ops@example.com")]
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": ["dbconnmgr.alerts.MailAdminsHandler"]}}
    held.open_many(2, "t-alert-mail")
    alerts.dispatch(
        evaluate(
            take_snapshot(health_alias), {"UTILIZATION_WARNING": 5, "UTILIZATION_CRITICAL": 10}
        )
    )
    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert "[dbconnmgr] health: CRITICAL utilization" in message.subject
    assert '"code": "utilization"' in message.body


class _Hook(BaseHTTPRequestHandler):
    bodies: list[tuple[dict[str, Any], str]] = []
    delay = 0.0
    status = 200

    def do_POST(self) -> None:
        time.sleep(self.delay)
        length = int(self.headers["Content-Length"])
        _Hook.bodies.append((json.loads(self.rfile.read(length)), self.headers["Authorization"]))
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    _Hook.bodies, _Hook.delay, _Hook.status = [], 0.0, 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_json(hook: str, held: Sessions, health_alias: str, settings) -> None:
    settings.DBCONNMGR = {
        "ALERTS": {
            "HANDLERS": [
                {
                    "HANDLER": "dbconnmgr.alerts.WebhookHandler",
                    "OPTIONS": {
                        "url": hook,
                        "timeout": 5,
                        "headers": {"Authorization": "Bearer s"},
                    },
                }
            ]
        }
    }
    held.open("t-alert-hook")
    alerts.dispatch(evaluate(take_snapshot(health_alias), {"UTILIZATION_WARNING": 5}))
    [(body, auth)] = _Hook.bodies
    assert auth == "Bearer s"
    assert body["status"] == "firing"
    assert (body["alias"], body["code"], body["severity"]) == ("health", "utilization", "warning")
    assert body["data"]["usable_connections"] == 17
    assert body["text"].startswith("[dbconnmgr] health: WARNING utilization")


@pytest.mark.parametrize("problem", ["refused", "timeout", "http 500"])
def test_webhook_failures_are_logged_not_raised(
    problem: str, hook: str, caplog: pytest.LogCaptureFixture, held: Sessions, health_alias: str
) -> None:
    url = hook
    if problem == "refused":
        url = f"http://127.0.0.1:{free_port()}/hook"
    elif problem == "timeout":
        _Hook.delay = 3
    else:
        _Hook.status = 500
    handler = alerts.WebhookHandler(url, timeout=0.5)
    held.open("t-alert-hookfail")
    report = evaluate(take_snapshot(health_alias), {"UTILIZATION_WARNING": 5})
    alert = Alert(report.alias, report.findings[0])
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="dbconnmgr.alerts"):
        handler(alert)
    assert time.monotonic() - started < 2.5  # the timeout held: the caller was not stuck
    assert f"dbconnmgr webhook {url} failed" in caplog.text


def test_webhook_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        alerts.WebhookHandler("file:///etc/passwd")


def test_handlers_as_a_string_is_one_line_not_a_traceback_per_character(
    held: Sessions, health_alias: str, settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DBCONNMGR = {"ALERTS": {"HANDLERS": RECORD}}
    held.open("t-alert-string")
    with caplog.at_level(logging.ERROR, logger="dbconnmgr.alerts"):
        alerts.dispatch(evaluate(take_snapshot(health_alias), {"UTILIZATION_WARNING": 5}))
        assert alerts.load_handlers() == []
        assert alerts.load_handlers(RECORD) == []
    assert sent() == []
    records = [r for r in caplog.records if r.name == "dbconnmgr.alerts"]
    assert len(records) == 3
    assert not any(r.exc_info for r in records)
    assert "DBCONNMGR['ALERTS']['HANDLERS'] must be a list" in records[0].getMessage()
    assert "DBCONNMGR['ALERTS']['HANDLERS'] must be a list" in records[1].getMessage()
    assert "handlers must be a list" in records[2].getMessage()
