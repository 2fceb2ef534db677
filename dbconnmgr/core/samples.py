"""Monitoring samples and the figures computed over them: pure logic, no I/O.

A :class:`Sample` is what the monitor reports at each tick: the counts of one snapshot, the
change since the previous reachable sample and the average active sessions (AAS) over a
time window, or, when the server could not be reached, since when. :class:`SampleWindow`
builds samples from successive snapshots and keeps only small counters between them, so a
monitor that runs for days uses constant memory.

:func:`hourly_peaks` turns recorded ``(time, total connections)`` pairs into the busiest
hours of the day (max, average and 95th percentile per hour, and the single busiest hour).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, cast

from dbconnmgr.core.figures import LONGEST_IDLE_IN_TRANSACTION, Figures
from dbconnmgr.core.snapshot import Connection, Counters, Snapshot
from dbconnmgr.exceptions import ServerUnavailable

#: Default length of the AAS window, in seconds.
DEFAULT_AAS_WINDOW = 60.0
#: At most this many samples are kept for the AAS, whatever the window and interval.
MAX_WINDOW_SAMPLES = 10_000


@dataclass(frozen=True, slots=True)
class Change:
    """How the counts moved since the previous reachable sample.

    Attributes:
        total_connections: difference of the totals.
        by_state: difference per state, for every state in :data:`~dbconnmgr.STATES`.
        by_application: difference per application name; only names whose count changed
            (a name that disappeared shows its negative count).
    """

    total_connections: int
    by_state: dict[str, int]
    by_application: dict[str, int]


@dataclass(frozen=True, slots=True)
class Sample:
    """One tick of the monitor.

    A reachable sample carries the snapshot it was built from (``snapshot``), its counts,
    the change since the previous reachable sample and the AAS. An unreachable sample has
    ``snapshot=None``, ``error`` set, ``unreachable_since`` (when the outage started) and no
    counts.

    Attributes:
        sequence: 1 for the first sample of a monitor, then 2, 3...
        alias: the Django database alias sampled.
        taken_at: the server's clock for a reachable sample, the client's (UTC) otherwise.
        snapshot: the snapshot (None when the server was unreachable). Keep a reference
            only as long as you need it: it holds every connection.
        figures: the snapshot's :class:`~dbconnmgr.core.figures.Figures` (every one None
            when unreachable); the count properties below read it.
        by_state: counts for every state, zeros included.
        by_application: counts per application_name, largest first.
        aas: average active sessions: mean of ``active_connections`` over the reachable
            samples of the last ``aas_window_seconds`` (this one included).
        aas_window_seconds: the length of the AAS window.
        aas_samples: how many samples the AAS averages.
        refused_connections: connection attempts the server refused (full, bad
            credentials, handshake timeouts) since the previous reachable sample, on engines
            that count them (MySQL's Aborted_connects); None otherwise.
        refused_full: of those, the ones refused because the server was full where the
            engine counts them apart (MySQL's Connection_errors_max_connections).
        extras: the snapshot's vendor figures, each cumulative counter with its growth since
            the previous sample (``<counter>_since_last_sample``); None when the engine
            reports none.
        change: the change since the previous reachable sample (None for the first).
        error: why the server could not be read (unreachable samples only).
        unreachable_since: when the current outage started (unreachable samples only).
        recovered_from: on the first reachable sample after an outage, when it started.
    """

    sequence: int
    alias: str
    taken_at: datetime
    snapshot: Snapshot | None = None
    figures: Figures = field(default_factory=Figures.unreachable)
    by_state: dict[str, int] | None = None
    by_application: dict[str, int] | None = None
    aas: float | None = None
    aas_window_seconds: float = DEFAULT_AAS_WINDOW
    aas_samples: int = 0
    refused_connections: int | None = None
    refused_full: int | None = None
    extras: dict[str, Any] | None = None
    change: Change | None = None
    error: str | None = None
    unreachable_since: datetime | None = None
    recovered_from: datetime | None = None
    problem: ServerUnavailable | None = None

    # The snapshot's figures (dbconnmgr.core.figures), None when unreachable.
    @property
    def database(self) -> str | None:
        """The server's database name the alias connects to."""
        return cast("str | None", self.figures["database"])

    @property
    def total_connections(self) -> int | None:
        """Client connections holding a slot (the monitor's own excluded)."""
        return cast("int | None", self.figures["total_connections"])

    @property
    def usable_connections(self) -> int | None:
        """Slots an ordinary role can use."""
        return cast("int | None", self.figures["usable_connections"])

    @property
    def max_connections(self) -> int | None:
        """The server's max_connections."""
        return cast("int | None", self.figures["max_connections"])

    @property
    def free_connections(self) -> int | None:
        """Slots the alias's role can still open."""
        return cast("int | None", self.figures["free_connections"])

    @property
    def utilization_percent(self) -> float | None:
        """:attr:`Snapshot.utilization_percent` (% of usable slots)."""
        return cast("float | None", self.figures["utilization_percent"])

    @property
    def max_connections_utilization_percent(self) -> float | None:
        """Total / max_connections x 100."""
        return cast("float | None", self.figures["max_connections_utilization_percent"])

    @property
    def active_connections(self) -> int | None:
        """Connections in state ``active``, the monitor's own excluded."""
        return cast("int | None", self.figures["active_connections"])

    @property
    def waiting_connections(self) -> int | None:
        """Sessions waiting on a lock."""
        return cast("int | None", self.figures["waiting_connections"])

    @property
    def longest_idle_in_transaction(self) -> Connection | None:
        """The session idle in a transaction the longest."""
        return self.figures.session(LONGEST_IDLE_IN_TRANSACTION.name)[0]

    @property
    def reachable(self) -> bool:
        """True when the server answered for this sample."""
        return self.snapshot is not None


class SampleWindow:
    """Builds :class:`Sample` objects from successive snapshots.

    Keeps the previous reachable sample's counts (for the change) and the active-session
    counts of the last ``aas_window`` seconds (for the AAS); nothing else, so memory stays
    flat however long the monitor runs.

    Args:
        alias: the Django database alias the snapshots come from.
        aas_window: length of the AAS window in seconds (> 0).
    """

    def __init__(self, alias: str, aas_window: float = DEFAULT_AAS_WINDOW) -> None:
        if not aas_window > 0:
            raise ValueError(f"aas_window must be > 0 seconds, got {aas_window}")
        self.alias = alias
        self.aas_window = float(aas_window)
        self.sequence = 0
        self._active: deque[tuple[datetime, int]] = deque(maxlen=MAX_WINDOW_SAMPLES)
        self._previous: tuple[int, dict[str, int], dict[str, int]] | None = None
        self._previous_extras: dict[str, Any] = {}
        self._unreachable_since: datetime | None = None

    def add(self, snapshot: Snapshot) -> Sample:
        """The sample of a snapshot just read."""
        self.sequence += 1
        figures = Figures.of(snapshot)
        by_state = snapshot.by_state()
        by_application = {g.name: g.count for g in snapshot.by_application()}
        total = figures["total_connections"]
        active = figures["active_connections"]

        now = snapshot.taken_at
        self._active.append((now, active))
        horizon = now.timestamp() - self.aas_window
        while self._active and self._active[0][0].timestamp() <= horizon:
            self._active.popleft()
        aas = round(sum(n for _, n in self._active) / len(self._active), 2)

        change = None
        if self._previous is not None:
            prev_total, prev_states, prev_apps = self._previous
            change = Change(
                total_connections=total - prev_total,
                by_state={
                    s: by_state.get(s, 0) - prev_states.get(s, 0)
                    for s in dict.fromkeys([*by_state, *prev_states])
                },
                by_application=_nonzero_difference(by_application, prev_apps),
            )
        self._previous = (total, by_state, by_application)
        extras, refused = self._counters(snapshot.extras, snapshot.counters)
        recovered_from, self._unreachable_since = self._unreachable_since, None
        return Sample(
            sequence=self.sequence,
            alias=self.alias,
            taken_at=now,
            snapshot=snapshot,
            figures=figures,
            by_state=by_state,
            by_application=by_application,
            aas=aas,
            aas_window_seconds=self.aas_window,
            aas_samples=len(self._active),
            refused_connections=refused,
            refused_full=None
            if extras is None or snapshot.counters.full_refused is None
            else extras.get(f"{snapshot.counters.full_refused}_since_last_sample"),
            extras=extras,
            change=change,
            recovered_from=recovered_from,
        )

    def _counters(
        self, current: dict[str, Any], counters: Counters
    ) -> tuple[dict[str, Any] | None, int | None]:
        """The vendor's figures with, for each cumulative counter, how much it grew since
        the previous reachable sample (``<counter>_since_last_sample``; None on the first
        sample or after a server restart reset it), and the refused-connections growth."""
        if not current:
            return None, None
        previous, self._previous_extras = self._previous_extras, current
        extras = dict(current)
        for name in counters.cumulative:
            if name not in current:
                continue
            before, now = previous.get(name), current[name]
            grown = None if before is None or now is None or now < before else now - before
            extras[f"{name}_since_last_sample"] = grown
        if counters.refused is None:
            return extras, None
        return extras, extras.get(f"{counters.refused}_since_last_sample")

    def unreachable(
        self, now: datetime, error: str, problem: ServerUnavailable | None = None
    ) -> Sample:
        """The sample of a tick at which the server could not be read.

        Args:
            now: the client's clock (timezone-aware).
            error: the one-line reason.
            problem: the exception, for health findings and alerts.
        """
        self.sequence += 1
        if self._unreachable_since is None:
            self._unreachable_since = now
        return Sample(
            sequence=self.sequence,
            alias=self.alias,
            taken_at=now,
            aas_window_seconds=self.aas_window,
            error=error,
            unreachable_since=self._unreachable_since,
            problem=problem,
        )


def _nonzero_difference(current: dict[str, int], previous: dict[str, int]) -> dict[str, int]:
    diff = {}
    for name in dict.fromkeys([*current, *previous]):
        delta = current.get(name, 0) - previous.get(name, 0)
        if delta:
            diff[name] = delta
    return diff


# -- peak hours --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HourStats:
    """Total connections in one hour of the day, over every recorded day.

    Attributes:
        hour: 0-23, in the time zone the report was computed in.
        samples: recorded samples in that hour.
        max: the highest total.
        average: the mean total, one decimal.
        p95: the 95th percentile of the totals (nearest rank).
    """

    hour: int
    samples: int
    max: int
    average: float
    p95: int


@dataclass(frozen=True, slots=True)
class PeakReport:
    """The busiest hours found in recorded samples.

    Attributes:
        samples: recorded samples considered.
        first: the oldest sample's time (None without samples).
        last: the newest sample's time.
        hours: one entry per hour of the day that has samples, in hour order.
        peak_hour: the hour of the day with the highest p95 (ties: highest max, then
            highest average); the hour a team should plan for.
        peak_day: the calendar day of the single highest total.
        peak_day_hour: the hour (0-23) of that day.
        peak_connections: that highest total.
        peak_at: the time of the sample that saw it (the first one, on ties).
    """

    samples: int
    first: datetime | None
    last: datetime | None
    hours: tuple[HourStats, ...]
    peak_hour: HourStats | None
    peak_day: date | None
    peak_day_hour: int | None
    peak_connections: int | None
    peak_at: datetime | None


def percentile(values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of ``values`` (sorted in place). 0 for an empty list."""
    if not values:
        return 0
    values.sort()
    rank = max(1, math.ceil(fraction * len(values)))
    return values[rank - 1]


def histogram_percentile(counts: Mapping[int, int], fraction: float) -> int:
    """:func:`percentile` of the values a histogram ``{value: how many}`` describes, without
    expanding it. 0 for an empty histogram."""
    total = sum(counts.values())
    if not total:
        return 0
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)  # not reached: the ranks add up to total


def hourly_peaks(rows: Iterable[tuple[datetime, int]], tz: tzinfo) -> PeakReport:
    """Per hour of the day, the max, average and p95 of total connections.

    Args:
        rows: ``(taken_at, total_connections)`` pairs, timezone-aware, in any order.
        tz: the time zone whose hours and days are reported.
    """
    per_hour: dict[int, list[int]] = {}
    count = 0
    first: datetime | None = None
    last: datetime | None = None
    peak_at: datetime | None = None
    peak_total = -1
    for taken_at, total in rows:
        local = taken_at.astimezone(tz)
        per_hour.setdefault(local.hour, []).append(total)
        count += 1
        if first is None or local < first:
            first = local
        if last is None or local > last:
            last = local
        if total > peak_total or (total == peak_total and peak_at and local < peak_at):
            peak_total, peak_at = total, local
    hours = tuple(
        HourStats(
            hour=hour,
            samples=len(values),
            max=max(values),
            average=round(sum(values) / len(values), 1),
            p95=percentile(values, 0.95),
        )
        for hour, values in sorted(per_hour.items())
    )
    peak_hour = max(hours, key=lambda h: (h.p95, h.max, h.average), default=None)
    return PeakReport(
        samples=count,
        first=first,
        last=last,
        hours=hours,
        peak_hour=peak_hour,
        peak_day=peak_at.date() if peak_at else None,
        peak_day_hour=peak_at.hour if peak_at else None,
        peak_connections=peak_total if peak_at else None,
        peak_at=peak_at,
    )


__all__ = [
    "DEFAULT_AAS_WINDOW",
    "MAX_WINDOW_SAMPLES",
    "Change",
    "HourStats",
    "PeakReport",
    "Sample",
    "SampleWindow",
    "histogram_percentile",
    "hourly_peaks",
    "percentile",
]
