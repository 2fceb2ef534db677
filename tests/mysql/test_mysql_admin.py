"""The admin page on a MariaDB alias: it renders, offers what the backend declares, and a
terminate from the page really ends the session (checked in the processlist)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from devtools.mariadbserver import MariaDBServer
from tests.mysql.conftest import MySessions, state_of
from tests.test_admin import staff

pytestmark = [pytest.mark.mysql, pytest.mark.django_db]


def test_admin_page_on_a_mariadb_alias_terminates_a_picked_session(
    django_user_model: Any,
    maria_alias: str,
    mysessions: MySessions,
    mariadb: MariaDBServer,
    make_account: Callable[..., str],
) -> None:
    make_account("t_admin_app", "pw")  # not a superuser: its sessions may be ended
    victim = mysessions.open("idle", user="t_admin_app", password="pw")
    bystander = mysessions.open("idle", user="t_admin_app", password="pw")
    page = f"/admin/dbconnmgr/connections/{maria_alias}/"
    ops = staff(django_user_model, "maria-ops", "view_connections", "terminate_connections")
    response = ops.get(page)
    html = response.content.decode()
    assert response.status_code == 200, html[:500]
    assert f'<tr data-pid="{victim.id}"' in html and f'<tr data-pid="{bystander.id}"' in html
    assert 'value="terminate"' in html

    plan = ops.post(page + "act/", {"pid": [victim.id], "signal": "terminate"})
    assert plan.status_code == 200 and 'id="dbc-confirm"' in plan.content.decode()
    assert state_of(mariadb, victim.id) == "idle"  # nothing happens before the confirmation
    fields = dict(re.findall(r'name="(start_\d+)" value="([^"]*)"', plan.content.decode()))
    done = ops.post(
        page + "act/", {"pid": [victim.id], "signal": "terminate", "confirm": "yes", **fields}
    )
    assert f'data-pid="{victim.id}" data-outcome="terminated"' in done.content.decode()
    assert state_of(mariadb, victim.id) is None
    assert state_of(mariadb, bystander.id) == "idle"


def test_cancel_long_queries_on_mariadb_ends_the_query_and_keeps_the_session(
    maria_alias: str,
    mysessions: MySessions,
    mariadb: MariaDBServer,
    make_account: Callable[..., str],
) -> None:
    from dbconnmgr import cancel_long_queries

    make_account("t_cancel_app", "pw")
    busy = mysessions.open("active", user="t_cancel_app", password="pw", sleep=60)
    calm = mysessions.open("idle", user="t_cancel_app", password="pw")
    time.sleep(0.6)
    report = cancel_long_queries(maria_alias, older_than=0.5, user="t_cancel_app")
    assert report.pids("query_cancelled") == (busy.id,)
    assert state_of(mariadb, busy.id) == "idle"  # the session stays, its query is gone
    assert state_of(mariadb, calm.id) == "idle"
