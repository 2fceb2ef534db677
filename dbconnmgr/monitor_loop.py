"""The sampling loop behind ``--action=monitor``, usable from Python.

::

    from dbconnmgr.monitor_loop import iter_samples

    for sample in iter_samples("default", interval=5, count=12):
        print(sample.taken_at, sample.total_connections, sample.aas)

Each tick reads one snapshot (:func:`dbconnmgr.take_snapshot`) and turns it into a
:class:`~dbconnmgr.core.samples.Sample`. When the server cannot be read
(:class:`~dbconnmgr.exceptions.ServerUnavailable`: it restarts, it is full, the network
went away) the tick yields an unreachable sample saying since when, Django's connection for
the alias is closed so that the next tick connects afresh, and the loop goes on: it resumes
by itself when the server is back.

``on_sample`` is called with every sample (reachable or not) before it is yielded: it is
where recording, health evaluation and alerts plug in.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from dbconnmgr.core.samples import Sample, SampleWindow
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.exceptions import ServerUnavailable

SampleHook = Callable[[Sample], None]


def _take_snapshot(using: str) -> Snapshot:
    from dbconnmgr import take_snapshot

    return take_snapshot(using)


def _close_connection(using: str) -> None:
    """Drop Django's (broken) connection for ``using`` so the next tick reconnects."""
    from django.db import DatabaseError, InterfaceError, connections

    with contextlib.suppress(DatabaseError, InterfaceError):
        connections[using].close()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Monitor:
    """Samples one database alias every ``interval`` seconds.

    Args:
        using: the Django database alias to watch.
        interval: seconds between the starts of two samples (> 0). A sample that takes
            longer than the interval is followed by the next one at once.
        aas_window: seconds of samples the AAS averages (default
            ``DBCONNMGR["AAS_WINDOW"]``, 60).
        on_sample: called with each sample before it is yielded.
        snapshot: reads a snapshot for an alias (default :func:`dbconnmgr.take_snapshot`).
        now: the client's clock, timezone-aware (used for unreachable samples).
        sleep: waits a number of seconds.

    Raises:
        ValueError: ``interval`` or ``aas_window`` is not > 0.
    """

    def __init__(
        self,
        using: str = "default",
        interval: float = 5.0,
        *,
        aas_window: float | None = None,
        on_sample: SampleHook | None = None,
        snapshot: Callable[[str], Snapshot] = _take_snapshot,
        now: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not (interval > 0 and interval != float("inf")):
            raise ValueError(f"interval must be a number of seconds > 0, got {interval}")
        if aas_window is None:
            from dbconnmgr.app_settings import get_setting

            aas_window = float(get_setting("AAS_WINDOW"))
        self.using = using
        self.interval = float(interval)
        self.window = SampleWindow(using, aas_window)
        self.on_sample = on_sample
        self._snapshot = snapshot
        self._now = now
        self._sleep = sleep

    def sample(self) -> Sample:
        """Take one sample now (reachable or not) and pass it to ``on_sample``."""
        try:
            snapshot = self._snapshot(self.using)
        except ServerUnavailable as exc:
            _close_connection(self.using)
            result = self.window.unreachable(self._now(), str(exc), exc)
        else:
            result = self.window.add(snapshot)
        if self.on_sample is not None:
            self.on_sample(result)
        return result

    def samples(self, count: int | None = None) -> Iterator[Sample]:
        """Yield ``count`` samples (forever when None), one every ``interval`` seconds.

        Raises:
            ValueError: ``count`` is less than 1.
        """
        if count is not None and count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        taken = 0
        next_at = time.monotonic()
        while True:
            yield self.sample()
            taken += 1
            if count is not None and taken >= count:
                return
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._sleep(delay)
            else:  # late: start again from now rather than firing a burst
                next_at = time.monotonic()


def iter_samples(
    using: str = "default",
    interval: float = 5.0,
    count: int | None = None,
    *,
    on_sample: SampleHook | None = None,
    aas_window: float | None = None,
) -> Iterator[Sample]:
    """Sample ``using`` every ``interval`` seconds, ``count`` times (forever when None).

    See :class:`Monitor` for the arguments. Unreachable servers do not raise: the sample
    says so (``sample.reachable`` is False) and the loop resumes when the server is back.

    Raises:
        ValueError: ``interval`` is not > 0 or ``count`` is less than 1 (at once).
    """
    if count is not None and count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    monitor = Monitor(using, interval, aas_window=aas_window, on_sample=on_sample)
    return monitor.samples(count)
