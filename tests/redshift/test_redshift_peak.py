"""--action=peak on a Redshift alias: the busiest hours from the cluster's retained history
(SYS_SESSION_HISTORY) and the WLM apex per queue and hour (STL_WLM_QUERY), computed by hand
over synthetic history rows here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from dbconnmgr.backends import get_backend
from dbconnmgr.core.retained import hourly_levels
from devtools.redshiftemu import RedshiftEmulation, add_history_session, add_queue, add_wlm_history
from tests.conftest import manage


def at(day: datetime, hour: int, minute: int) -> datetime:
    return day.replace(hour=hour % 24, minute=minute, second=0, microsecond=0)


def history(feeds: psycopg.Connection[Any]) -> tuple[dict[int, int], int, int]:
    """Synthetic sessions two and three days ago, in hours of the day at least 5 hours
    away from now (today's live sessions stay out of them). Returns the hand-computed
    most-at-once per hour of day, and the two hours used."""
    now = datetime.now(UTC).replace(tzinfo=None)
    h1, h2 = (now.hour + 6) % 24, (now.hour + 12) % 24
    d2, d3 = now - timedelta(days=2), now - timedelta(days=3)
    sessions = [
        # day -2, hour h1: three overlap from :30 to :40; one runs on into h1+1
        (at(d2, h1, 10), at(d2, h1, 40)),
        (at(d2, h1, 20), at(d2, h1, 50)),
        (at(d2, h1, 30), at(d2, h1, 30) + timedelta(minutes=40)),
        # day -3, hour h1: one short session
        (at(d3, h1, 0), at(d3, h1, 5)),
        # day -3, hour h2: one long session, a second inside its second hour
        (at(d3, h2, 0), at(d3, h2, 0) + timedelta(minutes=150)),
        (at(d3, h2, 0) + timedelta(minutes=60), at(d3, h2, 0) + timedelta(minutes=90)),
        # a session that ends as another starts does not overlap it
        (at(d2, h2, 0), at(d2, h2, 15)),
        (at(d2, h2, 15), at(d2, h2, 30)),
    ]
    for pid, (start, end) in enumerate(sessions, start=900000):
        add_history_session(feeds, pid=pid, start=start, end=end)
    expected = {h1: 3, (h1 + 1) % 24: 1, h2: 1, (h2 + 1) % 24: 2, (h2 + 2) % 24: 1}
    return expected, h1, h2


def test_peak_from_retained_history_equals_a_hand_computation(
    rs_alias: str, feeds: psycopg.Connection[Any]
) -> None:
    expected, _, _ = history(feeds)
    retained = get_backend(rs_alias).retained_peaks(7, UTC)
    assert retained is not None
    maxima = {h.hour: h.max for h in retained.sessions.hours}
    assert {hour: maxima[hour] for hour in expected} == expected
    assert retained.sessions.peak_connections is not None
    assert retained.sessions.peak_connections >= 3


def test_wlm_apex_per_queue_and_hour_equals_a_hand_computation(
    rs_alias: str, feeds: psycopg.Connection[Any]
) -> None:
    """wlm_apex_hourly's figure: the most slots held at once (summed slot_count)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    day = now - timedelta(days=1)
    add_queue(feeds, 6, "etl", 3)
    for start, minutes, slots in ((at(day, 10, 0), 30, 1), (at(day, 10, 10), 10, 2),
                                  (at(day, 10, 50), 20, 1)):  # fmt: skip
        add_wlm_history(feeds, service_class=6, start=start,
                        end=start + timedelta(minutes=minutes), slot_count=slots)  # fmt: skip
    retained = get_backend(rs_alias).retained_peaks(7, UTC)
    assert retained is not None and retained.wlm_apex is not None
    apex = {(a.service_class, a.hour): (a.max_slots, a.slots) for a in retained.wlm_apex}
    assert apex == {(6, at(day, 10, 0)): (3, 3), (6, at(day, 11, 0)): (1, 3)}


def test_the_sweep_counts_what_is_open_as_an_hour_begins() -> None:
    d = datetime(2026, 1, 1)
    intervals = [
        (d.replace(hour=9, minute=30), d.replace(hour=12), 1),
        (d.replace(hour=10, minute=15), d.replace(hour=10, minute=20), 2),
    ]
    levels = dict(hourly_levels(intervals, d.replace(hour=9), d.replace(hour=12, minute=30)))
    assert [levels[d.replace(hour=h)] for h in (9, 10, 11, 12)] == [1, 3, 1, 0]


def test_peak_command_offers_the_retained_history_beside_recorded_samples(
    emulation: RedshiftEmulation, feeds: psycopg.Connection[Any]
) -> None:
    expected, h1, _ = history(feeds)
    env = {"DB_REDSHIFT_NODE_TYPE": "ra3.xlplus", "TIME_ZONE": "UTC"}
    result = manage("db_connections", "--action=peak", "--format=json",
                    database_url=emulation.url, extra_env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["samples"] == 0  # nothing recorded: the cluster's own history answers
    hours = {h["hour"]: h["max"] for h in document["retained"]["hours"]}
    assert hours[h1] == expected[h1] == 3
    table = manage("db_connections", "--action=peak", database_url=emulation.url,
                   extra_env=env)  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "Retained history" in table.stdout and f"{h1:02d}:00" in table.stdout
