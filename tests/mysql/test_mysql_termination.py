"""close-idle, force-close and cancel on a real MariaDB server: KILL after a per-id re-check."""

from __future__ import annotations

import contextlib
import json
import random
import statistics
import threading
import time
from collections.abc import Callable

import MySQLdb
import pytest

from dbconnmgr.actions import close_idle_connections
from dbconnmgr.backends import get_backend
from dbconnmgr.backends.mysql.reader import MySQLBackend
from dbconnmgr.core.termination import Criteria
from dbconnmgr.exceptions import ActionNotPossible
from devtools.mariadbserver import MariaDBServer
from tests.conftest import database_alias
from tests.mysql.conftest import MySessions, manage, one_line, state_of

pytestmark = pytest.mark.mysql


def gone(server: MariaDBServer, thread_id: int) -> bool:
    return state_of(server, thread_id) is None


def test_close_idle_kills_idle_sessions_only(
    maria_alias: str, mariadb: MariaDBServer, make_account: Callable[..., str],
    mysessions: MySessions,
) -> None:  # fmt: skip
    make_account("t_idle", "pw")
    idle = mysessions.open_many(2, "idle", user="t_idle", password="pw")
    in_txn = mysessions.open("idle in transaction", user="t_idle", password="pw")
    active = mysessions.open("active", user="t_idle", password="pw")
    bystander = mysessions.open("idle")  # another user's session
    time.sleep(1.1)
    report = close_idle_connections(maria_alias, older_than=1.0, user="t_idle")
    assert sorted(report.terminated) == sorted(s.id for s in idle)
    assert all(gone(mariadb, s.id) for s in idle)
    assert state_of(mariadb, in_txn.id) == "idle in transaction"
    assert state_of(mariadb, active.id) == "active"
    assert state_of(mariadb, bystander.id) == "idle"
    with pytest.raises(MySQLdb.OperationalError):
        idle[0].conn.cursor().execute("SELECT 1")


def test_idle_in_transaction_and_age_are_rechecked(
    maria_alias: str, mariadb: MariaDBServer, mysessions: MySessions
) -> None:
    in_txn = mysessions.open("idle in transaction")
    time.sleep(0.3)
    backend = get_backend(maria_alias)
    criteria = Criteria(
        action="close-idle",
        states=("idle in transaction",),
        older_than=0.2,
        include_superusers=True,  # the suite's admin holds SUPER: protected otherwise
    )
    selection = backend.select_for_termination(criteria)
    mine = [c for c in selection.candidates if c.pid == in_txn.id]
    assert mine and mine[0].state == "idle in transaction"
    assert (
        backend.terminate(
            Criteria(action="close-idle", states=("idle in transaction",), older_than=0.2), mine
        )[in_txn.id].outcome
        == "protected"
    )
    in_txn.conn.cursor().execute("SELECT 1")  # its idle time restarts: no longer 0.2 s idle
    answers = backend.terminate(criteria, mine)
    assert answers[in_txn.id].outcome == "no_longer_matching"
    assert not gone(mariadb, in_txn.id)


def test_application_filter_is_refused_in_one_line(maria_alias: str) -> None:
    with pytest.raises(ActionNotPossible, match="no application name"):
        close_idle_connections(maria_alias, older_than=0, application="web")


def test_another_users_session_cannot_be_killed_without_the_privilege(
    mariadb: MariaDBServer, make_account: Callable[..., str], mysessions: MySessions
) -> None:
    url = make_account("t_weak", "pw")
    victim = mysessions.open("idle")  # admin's
    with database_alias("weak", url, options={"connect_timeout": 5}) as alias:
        backend = get_backend(alias)
        criteria = Criteria(action="force-close")  # any state: no transaction data needed
        selection = backend.select_for_termination(criteria)
        assert victim.id not in {c.pid for c in selection.candidates}  # not even visible
        assert selection.hidden >= 1
    assert state_of(mariadb, victim.id) == "idle"


def test_cancel_ends_the_query_and_keeps_the_session(
    maria_alias: str, mariadb: MariaDBServer, mysessions: MySessions
) -> None:
    active = mysessions.open("active", sleep=30)
    backend = get_backend(maria_alias)
    assert isinstance(backend, MySQLBackend) and backend.capabilities.can_cancel
    backend.cancel(active.id)
    assert active.thread is not None
    active.thread.join(timeout=10)
    assert not active.thread.is_alive()
    assert state_of(mariadb, active.id) == "idle"


def test_force_close_cli_on_a_mariadb_alias(
    mariadb: MariaDBServer, make_account: Callable[..., str], mysessions: MySessions
) -> None:
    url = make_account("t_app", "pw")
    app = mysessions.open_many(3, "idle", user="t_app", password="pw")
    other = mysessions.open("idle")
    dry = manage("db_connections", "--action=force-close", "--dry-run", "--format=json",
                 database_url=url)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert {s["pid"] for s in json.loads(dry.stdout)["selected"]} == {s.id for s in app}
    assert all(not gone(mariadb, s.id) for s in app)
    done = manage("db_connections", "--action=force-close", "--noinput", database_url=url)
    assert done.returncode == 0, done.stderr + done.stdout
    assert all(gone(mariadb, s.id) for s in app)
    assert state_of(mariadb, other.id) == "idle"


def test_close_idle_cli_without_noinput_refuses_off_a_terminal(
    mariadb: MariaDBServer, make_account: Callable[..., str], mysessions: MySessions
) -> None:
    make_account("t_confirm", "pw")
    idle = mysessions.open("idle", user="t_confirm", password="pw")
    result = manage("db_connections", "--action=close-idle", "--idle-for=0",
                    "--user=t_confirm", database_url=mariadb.url)  # fmt: skip
    assert result.returncode == 3
    assert "--noinput" in one_line(result.stderr)
    assert state_of(mariadb, idle.id) == "idle"


#: How long a sent query may stay unseen in the processlist: the server's thread must be
#: scheduled to read it (a few ms on a loaded 2-core machine).
GRACE = 0.005


def test_race_sessions_flipping_every_50ms_are_never_killed_mid_query(
    maria_alias: str, make_account: Callable[..., str], mariadb: MariaDBServer
) -> None:
    """KILL cannot be conditional: the processlist is re-read just before the KILLs, in the
    same compound statement. Sessions alternate 50 ms of SLEEP and 50 ms idle; close-idle
    (older_than=0) runs again and again, 20 ms after each selection (as a confirmation
    would). A session whose query was sent more than GRACE before the re-check read (time
    for the server's thread to read it and show it), yet was killed, was killed mid-query:
    there must be none
    (without the re-check, several are). Queries sent between the read and the KILL are
    the race window left: counted and printed, with the window's length."""
    make_account("t_race", "pw")
    sessions = 40  # several re-check chunks
    stop = threading.Event()
    records: dict[int, float | None] = {}  # id -> when its failing query was sent

    def flip(conn: MySQLdb.Connection, tid: int) -> None:
        cursor = conn.cursor()
        time.sleep(random.uniform(0, 0.1))  # out of phase with each other
        while not stop.is_set():
            sent = time.time()
            try:
                cursor.execute("SELECT SLEEP(0.05)")
                cursor.fetchall()
            except MySQLdb.Error:
                records[tid] = sent
                return
            time.sleep(0.05)

    conns = [MySQLdb.connect(**mariadb.connect_kwargs("t_race", "pw")) for _ in range(sessions)]
    threads = []
    for conn in conns:
        conn.autocommit(True)
        tid = conn.thread_id()
        records[tid] = None
        threads.append(threading.Thread(target=flip, args=(conn, tid), daemon=True))
    for thread in threads:
        thread.start()
    backend = get_backend(maria_alias)
    assert isinstance(backend, MySQLBackend)
    criteria = Criteria(action="close-idle", states=("idle",), older_than=0.0, user="t_race")
    spared = 0
    deadline = time.monotonic() + 20
    while len(backend.signalled_at) < sessions and time.monotonic() < deadline:
        selection = backend.select_for_termination(criteria)
        time.sleep(0.02)  # as a confirmation would: a fifth of the candidates turn active
        answers = backend.terminate(criteria, selection.candidates)
        spared += sum(a.outcome == "no_longer_matching" for a in answers.values())
    time.sleep(0.2)  # every client tries its next query and meets the closed connection
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    for conn in conns:
        with contextlib.suppress(MySQLdb.Error):
            conn.close()

    mid_query, in_window = [], []
    windows = [(done - checked) * 1000 for checked, done in backend.signalled_at.values()]
    for tid, (checked, _done) in backend.signalled_at.items():
        sent = records.get(tid)
        if sent is None or sent > checked:
            if sent is not None and sent <= _done:
                in_window.append(tid)
            continue
        if checked - sent > GRACE:
            mid_query.append(round((checked - sent) * 1000, 2))
    print(
        f"\nrace: {len(backend.signalled_at)} killed, {spared} spared by the re-check; "
        f"{len(in_window)} had a query sent inside the window; window (re-check read to end "
        f"of KILL) median {statistics.median(windows):.2f} ms, max {max(windows):.2f} ms; "
        f"{len(mid_query)} killed mid-query"
    )
    assert len(backend.signalled_at) == sessions
    assert spared > 0  # the test did race: some candidates had turned active
    assert mid_query == [], f"killed mid-query (ms its query ran before the re-check): {mid_query}"


def test_close_idle_without_process_refuses_rather_than_guess_idle(
    mariadb: MariaDBServer, make_account: Callable[..., str], mysessions: MySessions
) -> None:
    """Without PROCESS, INNODB_TRX is closed: a session in a transaction looks idle."""
    url = make_account("t_noproc", "pw")
    in_txn = mysessions.open("idle in transaction", user="t_noproc", password="pw")
    result = manage("db_connections", "--action=close-idle", "--idle-for=0", "--noinput",
                    database_url=url)  # fmt: skip
    assert result.returncode == 3
    assert "PROCESS" in one_line(result.stderr)
    assert state_of(mariadb, in_txn.id) == "idle in transaction"
