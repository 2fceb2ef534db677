"""The pure aggregation of dbconnmgr.core.snapshot, on snapshots built in Python.

No database: every snapshot comes from tests/factories.py and includes the reader's own
active connection (pid READER_PID), which no count may include.
"""

from __future__ import annotations

import dataclasses

import pytest

from dbconnmgr.core.snapshot import STATES, ClientCount, utilization
from tests.factories import READER_PID, ConnectionFactory, ServerLimitsFactory, SnapshotFactory

Conn = ConnectionFactory.build


def test_reader_is_in_connections_but_in_no_count() -> None:
    snap = SnapshotFactory.build(connections=[Conn(state="active"), Conn(state="idle")])
    assert len(snap.connections) == 3
    assert READER_PID in {c.pid for c in snap.connections}
    assert READER_PID not in {c.pid for c in snap.others()}
    assert snap.total_connections == 2
    assert snap.active_connections == 1  # the reader is active too, and not counted
    assert snap.by_state()["active"] == 1
    assert sum(snap.by_state().values()) == 2
    assert [g.name for g in snap.by_application()] == ["web"]  # not "dbconnmgr"
    assert snap.hidden_connections == 0


def test_empty_server_counts_zero_and_is_not_full() -> None:
    snap = SnapshotFactory.build()
    assert snap.total_connections == 0
    assert snap.free_connections == 17
    assert (snap.utilization_percent, snap.max_connections_utilization_percent) == (0.0, 0.0)
    assert snap.oldest_transaction() is None
    assert snap.longest_idle_in_transaction() is None
    assert snap.longest_running_query() is None


def test_by_state_lists_every_state_in_order_and_keeps_unknown_ones() -> None:
    snap = SnapshotFactory.build(
        connections=[
            Conn(state="idle"), Conn(state="idle"), Conn(state="idle in transaction"),
            Conn(state="unknown", visible=False), Conn(state="starting"),
        ]
    )  # fmt: skip
    by_state = snap.by_state()
    assert list(by_state)[: len(STATES)] == list(STATES)
    assert by_state["idle"] == 2
    assert by_state["idle in transaction"] == 1
    assert by_state["unknown"] == 1
    assert by_state["disabled"] == 0
    assert by_state["starting"] == 1  # a state a newer server invents is not lost
    assert snap.hidden_connections == 1
    assert snap.idle_in_transaction_connections == 1


@pytest.mark.parametrize(
    ("method", "field"),
    [
        ("by_application", "application_name"),
        ("by_user", "user"),
        ("by_database", "database"),
        ("by_client", "client"),
    ],
)
def test_groupings_largest_first_then_by_name_with_top_n(method: str, field: str) -> None:
    values = ["b", "b", "a", "a", "c", "c", "c", "d"]
    snap = SnapshotFactory.build(
        connections=[Conn(**{field: v, "state": "idle"}) for v in values]
        + [Conn(**{field: "c", "state": "active"})]
    )
    groups = getattr(snap, method)()
    assert [(g.name, g.count) for g in groups] == [("c", 4), ("a", 2), ("b", 2), ("d", 1)]
    assert groups[0].by_state == {"active": 1, "idle": 3}
    top = getattr(snap, method)(limit=2)
    assert [g.name for g in top] == ["c", "a"]


def test_group_names_for_empty_and_hidden_values() -> None:
    snap = SnapshotFactory.build(
        connections=[Conn(application_name=""), Conn(user=None, database=None, visible=False)]
    )
    assert {g.name for g in snap.by_application()} == {"(none)", "web"}
    assert {g.name for g in snap.by_user()} == {"app", "unknown"}
    assert {g.name for g in snap.by_database()} == {"app", "unknown"}


def test_utilization_is_of_usable_slots_and_of_max_connections() -> None:
    snap = SnapshotFactory.build(connections=ConnectionFactory.build_batch(5))
    assert snap.usable_connections == 17
    assert snap.utilization_percent == round(5 * 100 / 17, 1)  # 29.4
    assert snap.max_connections_utilization_percent == 25.0  # 5 of 20
    assert snap.free_connections == 12
    assert snap.limited_by == "server"


def test_utilization_can_exceed_100_when_superusers_use_reserved_slots() -> None:
    snap = SnapshotFactory.build(connections=ConnectionFactory.build_batch(19))
    assert snap.utilization_percent == round(19 * 100 / 17, 1)
    assert snap.free_connections == 0


@pytest.mark.parametrize(
    ("connections", "slots", "expected"),
    [(0, 0, 0.0), (3, 0, 100.0), (3, -1, 100.0), (0, 17, 0.0), (17, 17, 100.0), (1, 3, 33.3)],
)
def test_zero_denominators_give_one_answer_everywhere(
    connections: int, slots: int, expected: float
) -> None:
    assert utilization(connections, slots) == expected
    count = ClientCount(client_connections=connections, max_connections=slots,
                        usable_connections=slots)  # fmt: skip
    assert count.utilization_percent == expected
    limits = ServerLimitsFactory.build(
        max_connections=max(slots, 0), superuser_reserved_connections=0
    )
    snap = SnapshotFactory.build(
        limits=limits, connections=ConnectionFactory.build_batch(connections)
    )
    assert snap.utilization_percent == expected
    assert snap.max_connections_utilization_percent == expected


def test_database_and_role_limits_cap_the_usable_slots() -> None:
    limits = ServerLimitsFactory.build(database_limits={"app": 4, "other": 1}, role_limits={})
    conns = [*ConnectionFactory.build_batch(3), Conn(database="other"), Conn(database="other")]
    snap = SnapshotFactory.build(limits=limits, connections=conns)
    assert snap.limited_by == "database"
    assert snap.free_connections == 1  # 3 of the database's 4
    assert snap.utilization_percent == 75.0
    assert snap.max_connections_utilization_percent == 25.0  # 5 of 20, every database

    by_role = dataclasses.replace(limits, database_limits={}, role_limits={"app": 3})
    snap = SnapshotFactory.build(limits=by_role, connections=conns)
    assert (snap.limited_by, snap.free_connections, snap.utilization_percent) == (
        "role", 0, round(5 * 100 / 3, 1),
    )  # fmt: skip

    # PostgreSQL does not apply those limits to a superuser.
    superuser = dataclasses.replace(by_role, is_superuser=True)
    snap = SnapshotFactory.build(limits=superuser, connections=conns)
    assert (snap.limited_by, snap.free_connections) == ("server", 12)


def test_ages_exclude_the_reader_and_idle_sessions_last_query() -> None:
    snap = SnapshotFactory.build(
        connections=[
            Conn(state="idle", query_seconds=900.0),  # its last query finished long ago
            Conn(pid=7, state="active", query_seconds=12.0, transaction_seconds=30.0),
            Conn(pid=8, state="idle in transaction", state_seconds=40.0,
                 transaction_seconds=50.0),
        ]
    )  # fmt: skip
    longest = snap.longest_running_query()
    assert longest is not None and (longest.pid, longest.running_seconds) == (7, 12.0)
    oldest = snap.oldest_transaction()
    assert oldest is not None and oldest.pid == 8
    iit = snap.longest_idle_in_transaction()
    assert iit is not None and iit.pid == 8


def test_waiting_connections_exclude_the_reader() -> None:
    snap = SnapshotFactory.build(
        connections=[Conn(state="active", wait_event_type="Lock", blocking_pids=(READER_PID,))]
    )
    assert [c.state for c in snap.waiting_connections] == ["active"]
    assert snap.count_state("active") == 1
