"""The figure declarations of dbconnmgr.core.figures, on snapshots built in Python.

Every document, the status table, the admin page, samples and /metrics read these; the
tests here check the declaration is whole and that its values are the snapshot's own.
"""

from __future__ import annotations

from typing import Any

import pytest

from dbconnmgr.core import figures as fig
from dbconnmgr.core.documents import ServerInfoDoc, StatusDoc
from dbconnmgr.core.figures import FIGURES, Figures
from dbconnmgr.core.samples import SampleWindow
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.payloads import server_info, status_payload
from tests.factories import ConnectionFactory, SnapshotFactory

pytestmark = pytest.mark.engine_neutral

Conn = ConnectionFactory.build


def _snapshot() -> Snapshot:
    return SnapshotFactory.build(
        connections=[
            Conn(state="active", query_seconds=4.44, transaction_seconds=9.99, backend_seconds=50),
            Conn(state="idle in transaction", state_seconds=7.77, transaction_seconds=8.0),
            Conn(state="idle", backend_seconds=120.0, wait_event_type="Lock"),
        ]
    )


def test_figures_are_the_snapshots_own_values() -> None:
    snap = _snapshot()
    figures = Figures.of(snap)
    assert figures["total_connections"] == snap.total_connections == 3
    assert figures["utilization_percent"] == snap.utilization_percent
    assert figures["free_connections"] == snap.free_connections
    assert figures["waiting_connections"] == 1
    assert figures["oldest_transaction_seconds"] == 10.0  # rounded to one decimal
    assert figures["longest_idle_in_transaction_seconds"] == 7.8
    assert figures["longest_query_seconds"] == 4.4
    conn, seconds = figures.session("longest_idle_in_transaction")
    assert conn is snap.longest_idle_in_transaction() and seconds == 7.77


def test_unreachable_form_has_every_figure_and_each_is_none() -> None:
    down = Figures.unreachable()
    assert set(down) == set(Figures.of(_snapshot())) == {f.name for f in FIGURES}
    assert all(value is None for value in down.values())
    assert all(down.session(s.name) == (None, None) for s in fig.SESSIONS)
    assert not down.reachable


def test_each_figure_is_declared_once_and_every_layout_names_declared_figures() -> None:
    names = [f.name for f in FIGURES]
    assert len(names) == len(set(names))
    metrics = [m.name for f in FIGURES for m in f.metrics]
    assert len(metrics) == len(set(metrics))
    for layout in (
        fig.STATUS_SERVER_KEYS,
        fig.STATUS_KEYS,
        fig.STATUS_TAIL_KEYS,
        fig.SERVER_INFO_KEYS,
        fig.RECORDED_KEYS,
    ):
        assert set(layout) <= set(names), layout
    # the documents' declarations carry every key the layouts put in them
    assert set(fig.SERVER_INFO_KEYS) | {"reachable"} == set(ServerInfoDoc.__annotations__)
    assert set(fig.STATUS_KEYS + fig.STATUS_TAIL_KEYS) <= set(StatusDoc.__annotations__)


def test_documents_and_samples_read_the_same_figures() -> None:
    snap = _snapshot()
    figures = Figures.of(snap)
    status: dict[str, Any] = dict(status_payload(snap))
    info: dict[str, Any] = dict(server_info(snap))
    for key in fig.SERVER_INFO_KEYS:
        assert info[key] == figures[key], key
    for key in fig.STATUS_KEYS + fig.STATUS_TAIL_KEYS:
        assert status[key] == figures[key], key
    assert status["longest_idle_in_transaction"] is not None
    sample = SampleWindow("default").add(snap)
    assert sample.total_connections == figures["total_connections"]
    assert sample.longest_idle_in_transaction is figures.session("longest_idle_in_transaction")[0]
    assert server_info(None) == {"reachable": False, **dict.fromkeys(fig.SERVER_INFO_KEYS)}


def test_table_and_admin_show_the_declared_figures_with_their_unit() -> None:
    rows = dict(Figures.of(_snapshot()).shown("table"))
    assert rows["Waiting on locks"] == "1"
    assert rows["Longest idle in txn"].startswith("7.8s (pid ")
    assert [label for label, _ in Figures.unreachable().shown("admin")] == [
        f.label for f in FIGURES if f.admin
    ]
    assert fig.format_value(fig.BY_NAME["utilization_percent"], 12.5) == "12.5%"
    assert fig.format_value(fig.BY_NAME["oldest_transaction_seconds"], 125.0) == "2m05s"


def test_oldest_connection_is_the_oldest_backend_but_not_the_readers() -> None:
    figures = Figures.of(_snapshot())
    assert figures["oldest_connection_seconds"] == 120.0
    assert ("Oldest connection", "2m00s") in figures.shown("table")
    assert Figures.of(SnapshotFactory.build())["oldest_connection_seconds"] is None
