"""The emulated Redshift catalog itself: AWS's columns, real sessions, Redshift's visibility.

If these fail, every other Redshift test proves less than it claims.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from devtools.redshiftemu import CATALOG_SCHEMA, RedshiftEmulation, add_history_session
from tests.redshift.catalog import VIEWS, DocumentedView, postgres_type
from tests.redshift.conftest import RsSessions


def emulated_columns(emulation: RedshiftEmulation, view: str) -> list[tuple[str, str]]:
    return [
        (str(name), str(kind))
        for name, kind in emulation.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = %s::regnamespace AND c.relname = %s "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (CATALOG_SCHEMA, view),
        )
    ]


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.name)
def test_each_emulated_view_has_the_columns_and_types_of_its_aws_page(
    emulation: RedshiftEmulation, view: DocumentedView
) -> None:
    expected = [(name, postgres_type(kind)) for name, kind in view.columns]
    assert emulated_columns(emulation, view.name) == expected, view.url


def test_the_catalog_holds_only_documented_names(emulation: RedshiftEmulation) -> None:
    """Nothing in the schema a cluster would not have (getdate() is Redshift's function)."""
    names = {
        str(row[0])
        for row in emulation.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace",
            (CATALOG_SCHEMA,),
        )
    }
    assert names == {v.name for v in VIEWS}


def sessions_seen(dsn: str) -> dict[int, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {
            int(pid): str(user)
            for pid, user in conn.execute(
                "SELECT process, rtrim(user_name) FROM stv_sessions"
            ).fetchall()
        }


def test_real_sessions_appear_with_redshift_visibility(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, rs_user: Any
) -> None:
    restricted = rs_user("rs_plain")
    unrestricted = rs_user("rs_syslog", syslog_unrestricted=True)
    mine = rs_sessions.open(dsn=restricted)
    other = rs_sessions.open()  # the superuser's
    assert sessions_seen(emulation.dsn())[mine.pid] == "rs_plain"
    plain_view = sessions_seen(restricted)
    assert mine.pid in plain_view and other.pid not in plain_view
    assert set(plain_view.values()) == {"rs_plain"}
    assert {mine.pid, other.pid} <= set(sessions_seen(unrestricted))


def test_running_idle_and_in_transaction_sessions_show_where_redshift_shows_them(
    emulation: RedshiftEmulation, rs_sessions: RsSessions
) -> None:
    idle = rs_sessions.open("idle")
    active = rs_sessions.open("active")
    in_txn = rs_sessions.open("idle in transaction")
    running = {int(r[0]) for r in emulation.execute(
        "SELECT pid FROM stv_recents WHERE status = 'Running'")}  # fmt: skip
    assert active.pid in running and idle.pid not in running and in_txn.pid not in running
    inflight = {int(r[0]) for r in emulation.execute("SELECT pid FROM stv_inflight")}
    assert active.pid in inflight
    open_txn = {
        int(r[0])
        for r in emulation.execute(
            "SELECT pid FROM svv_transactions WHERE lockable_object_type = 'transactionid' "
            "AND lock_mode = 'ExclusiveLock' AND granted"
        )
    }
    assert in_txn.pid in open_txn and idle.pid not in open_txn
    ended = emulation.execute(
        "SELECT end_time FROM sys_query_history WHERE session_id = %s AND status = 'success'",
        (idle.pid,),
    )
    assert ended and ended[0][0] is not None


def test_pg_terminate_backend_really_ends_a_listed_session(
    emulation: RedshiftEmulation, rs_sessions: RsSessions
) -> None:
    victim = rs_sessions.open("idle")
    emulation.execute("SELECT pg_terminate_backend(%s)", (victim.pid,))
    deadline = time.monotonic() + 5
    while emulation.execute("SELECT 1 FROM stv_sessions WHERE process = %s", (victim.pid,)):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(psycopg.OperationalError):
        victim.conn.execute("SELECT 1")


def test_logins_are_logged_by_the_login_trigger_and_history_rows_join_them(
    emulation: RedshiftEmulation, rs_sessions: RsSessions, feeds: psycopg.Connection[Any]
) -> None:
    session = rs_sessions.open(application_name="logged-app")
    rows = emulation.execute(
        "SELECT event, rtrim(application_name) FROM stl_connection_log WHERE pid = %s",
        (session.pid,),
    )
    assert [(str(e).rstrip(), a) for e, a in rows] == [("initiating session", "logged-app")]
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)
    add_history_session(feeds, pid=424242, start=start, end=start + timedelta(minutes=5))
    history = emulation.execute(
        "SELECT rtrim(status), start_time, end_time FROM sys_session_history "
        "WHERE session_id = 424242"
    )
    assert history == [("closed", start, start + timedelta(minutes=5))]
    live = emulation.execute(
        "SELECT rtrim(status), end_time FROM sys_session_history WHERE session_id = %s",
        (session.pid,),
    )
    assert live == [("active", None)]


def test_superuser_only_views_show_nothing_to_a_regular_user(
    emulation: RedshiftEmulation, rs_user: Any
) -> None:
    dsn = rs_user("rs_nosuper", syslog_unrestricted=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for view in ("stl_connection_log", "stv_wlm_service_class_config",
                     "stv_wlm_service_class_state"):  # fmt: skip
            assert conn.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)


def test_connection_limits_are_text_and_really_enforced(
    emulation: RedshiftEmulation, rs_user: Any
) -> None:
    dsn = rs_user("rs_limited", connection_limit=1)
    assert emulation.execute(
        "SELECT connection_limit FROM svv_user_info WHERE user_name = 'rs_limited'"
    ) == [("1",)]
    with psycopg.connect(dsn), pytest.raises(psycopg.OperationalError, match="too many"):
        psycopg.connect(dsn)
