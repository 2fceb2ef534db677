"""The admin page against the real server: who may see and act, what it shows, and that a
terminate or cancel from the page really happens (checked in pg_stat_activity)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tests.conftest import Sessions, superuser_dsn, wait_for_state
from tests.factories import ConnectionSampleFactory

pytestmark = pytest.mark.django_db

PAGE = "/admin/dbconnmgr/connections/default/"
ACT = "/admin/dbconnmgr/connections/default/act/"


def staff(django_user_model: Any, name: str, *perms: str) -> Client:
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def state_of(dsn: str, pid: int) -> str | None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return None if row is None else str(row[0])


@pytest.fixture
def app_dsn(make_role: Any) -> str:
    """An ordinary role: superusers' sessions are spared unless asked for."""
    dsn: str = make_role("t_admin_app")
    return dsn


def pids_listed(html: str) -> set[int]:
    return {int(p) for p in re.findall(r'<tr data-pid="(\d+)"', html)}


def test_the_admin_index_links_the_page_for_those_who_may_see_it(
    django_user_model: Any,
) -> None:
    viewer = staff(django_user_model, "viewer", "view_connections")
    index = viewer.get("/admin/").content.decode()
    assert 'href="/admin/dbconnmgr/connections/"' in index
    assert viewer.get("/admin/dbconnmgr/connections/")["Location"] == PAGE
    nobody = staff(django_user_model, "plainstaff")
    assert "/admin/dbconnmgr/connections/" not in nobody.get("/admin/").content.decode()
    assert nobody.get(PAGE).status_code == 403


def test_non_staff_and_anonymous_are_sent_to_the_login_page(django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("outsider", password="pw", is_staff=False)
    user.user_permissions.add(Permission.objects.get(codename="view_connections"))
    client = Client()
    client.force_login(user)
    for who in (client, Client()):
        response = who.get(PAGE)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert who.post(ACT, {"pid": "1", "signal": "terminate"}).status_code == 302


def test_page_shows_counts_health_and_the_sessions_without_query_text(
    django_user_model: Any, sessions: Sessions
) -> None:
    mine = sessions.open_many(2, "t-admin-page")
    sessions.open("t-admin-other")
    viewer = staff(django_user_model, "viewer2", "view_connections")
    response = viewer.get(PAGE)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="dbc-bar"' in html and "usable slots" in html
    assert "Waiting on locks: 0" in html  # the figures declared for the admin page
    assert "By application" in html and "t-admin-page" in html
    assert "Lock waits" in html  # the backend reports lock waits
    assert {s.pid for s in mine} <= pids_listed(html)
    assert "SELECT 1" not in html and "<th>query</th>" not in html  # no permission
    assert 'name="pid"' not in html  # may not act: no checkboxes, no buttons

    filtered = viewer.get(PAGE, {"application": "t-admin-page"}).content.decode()
    assert pids_listed(filtered) == {s.pid for s in mine}

    reader = staff(django_user_model, "reader", "view_connections", "view_query_text")
    assert "SELECT 1" in reader.get(PAGE, {"application": "t-admin-page"}).content.decode()


def test_live_fragment_is_the_live_part_alone(django_user_model: Any) -> None:
    viewer = staff(django_user_model, "viewer3", "view_connections")
    fragment = viewer.get(PAGE + "live/").content.decode()
    assert fragment.lstrip().startswith('<div class="dbc-live-part"')
    assert "<html" not in fragment and "dbc-bar" in fragment


def test_terminate_from_the_page_asks_then_ends_the_session(
    django_user_model: Any,
    sessions: Sessions,
    dsn: str,
    app_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    victim = sessions.open("t-admin-kill", dsn=app_dsn)
    bystander = sessions.open("t-admin-kill", dsn=app_dsn)
    viewer = staff(django_user_model, "looker", "view_connections")
    assert viewer.post(ACT, {"pid": victim.pid, "signal": "terminate"}).status_code == 403

    ops = staff(django_user_model, "ops", "view_connections", "terminate_connections")
    assert 'value="terminate"' in ops.get(PAGE).content.decode()
    assert ops.get(ACT).status_code == 405
    plan = ops.post(ACT, {"pid": [victim.pid], "signal": "terminate"})
    assert plan.status_code == 200
    assert 'id="dbc-confirm"' in plan.content.decode()
    assert state_of(dsn, victim.pid) == "idle"  # nothing happens before the confirmation

    start = re.search(rf'name="start_{victim.pid}" value="([^"]+)"', plan.content.decode())
    assert start is not None
    # a pid the server gave to another session since the confirmation page is spared
    reused = ops.post(ACT, {"pid": [victim.pid], "signal": "terminate", "confirm": "yes",
                            f"start_{victim.pid}": "2001-01-01T00:00:00+00:00"})  # fmt: skip
    assert "nothing matched" in reused.content.decode()
    assert state_of(dsn, victim.pid) == "idle"

    with caplog.at_level(logging.INFO, logger="dbconnmgr"):
        done = ops.post(
            ACT,
            {"pid": [victim.pid], "signal": "terminate", "confirm": "yes",
             f"start_{victim.pid}": start.group(1)},
        )  # fmt: skip
    html = done.content.decode()
    assert f'data-pid="{victim.pid}" data-outcome="terminated"' in html
    assert state_of(dsn, victim.pid) is None
    assert state_of(dsn, bystander.pid) == "idle"
    assert any(
        "admin-terminate: terminated backend" in r.getMessage()
        and "Django user ops via OS user" in r.getMessage()
        for r in caplog.records
    )


def test_cancel_from_the_page_ends_the_query_and_keeps_the_session(
    django_user_model: Any, sessions: Sessions, dsn: str, app_dsn: str
) -> None:
    busy = sessions.open("t-admin-cancel", "active", dsn=app_dsn)
    ops = staff(django_user_model, "ops2", "view_connections", "terminate_connections")
    plan = ops.post(ACT, {"pid": [busy.pid], "signal": "cancel"}).content.decode()
    start = re.search(rf'name="start_{busy.pid}" value="([^"]+)"', plan)
    assert start is not None
    done = ops.post(
        ACT,
        {"pid": [busy.pid], "signal": "cancel", "confirm": "yes",
         f"start_{busy.pid}": start.group(1)},
    )  # fmt: skip
    assert f'data-pid="{busy.pid}" data-outcome="query_cancelled"' in done.content.decode()
    assert busy.thread is not None
    busy.thread.join(timeout=10)
    wait_for_state(dsn, busy.pid, "idle")
    assert busy.conn.execute("SELECT 1").fetchone() == (1,)


def test_posts_without_a_csrf_token_are_refused(django_user_model: Any) -> None:
    user = django_user_model.objects.create_superuser("root2", password="pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(ACT, {"pid": "1", "signal": "terminate"}).status_code == 403


def test_charts_have_one_point_per_bucket_with_samples(django_user_model: Any) -> None:
    now = timezone.now().replace(second=30, microsecond=0)
    # 3 minutes of samples every 5 s in the last hour, plus one sample 2 days ago
    for minute in range(3):
        for second in range(0, 60, 5):
            ConnectionSampleFactory.create(
                taken_at=now - dt.timedelta(minutes=10 + minute, seconds=second),
                total_connections=10 + minute,
            )
    ConnectionSampleFactory.create(taken_at=now - dt.timedelta(days=2), total_connections=50)
    cache.clear()  # the heatmap is cached for a few minutes
    viewer = staff(django_user_model, "viewer4", "view_connections")
    hour = viewer.get(PAGE, {"period": "hour"}).content.decode()
    assert 'class="dbconnmgr-chart"' in hour
    assert len(re.findall(r'<circle class="point"', hour)) in (3, 4)  # minute buckets
    week = viewer.get(PAGE, {"period": "week"}).content.decode()
    points = len(re.findall(r'<circle class="point"', week))
    assert points in (2, 3)  # the recent hour bucket(s) and the one two days ago
    cells = re.findall(r'<g class="cell"[^>]*data-max="(\d+)"', week)
    assert "50" in cells and "12" in cells


def test_only_what_the_backend_declares_is_offered(
    django_user_model: Any, monkeypatch: pytest.MonkeyPatch, sessions: Sessions, app_dsn: str
) -> None:
    """An engine that cannot cancel a query (or report lock waits) gets no such button or
    section, and a forged POST is refused: the page asks capabilities, not the engine."""
    import dataclasses

    from dbconnmgr.backends.postgresql.reader import PostgreSQLBackend

    limited = dataclasses.replace(
        PostgreSQLBackend.capabilities, can_cancel=False, reports_lock_waits=False
    )
    monkeypatch.setattr(PostgreSQLBackend, "capabilities", limited)
    busy = sessions.open("t-admin-caps", "active", dsn=app_dsn)
    ops = staff(django_user_model, "ops3", "view_connections", "terminate_connections")
    html = ops.get(PAGE).content.decode()
    assert 'value="terminate"' in html and 'value="cancel"' not in html
    assert "Lock waits" not in html
    refused = ops.post(ACT, {"pid": [busy.pid], "signal": "cancel", "confirm": "yes"})
    assert refused.status_code == 403
    assert state_of(superuser_dsn(), busy.pid) == "active"
