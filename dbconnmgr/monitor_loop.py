"""The sampling loop behind ``--action=monitor``, usable from Python.

::

    from dbconnmgr.monitor_loop import iter_samples

    for sample in iter_samples("default", interval=5, count=12):
        print(sample.taken_at, sample.total_connections, sample.aas)

Each tick reads one snapshot and turns it into a :class:`~dbconnmgr.core.samples.Sample`.
The snapshot is read through a private, unpooled connection of the monitor's own
(:func:`dbconnmgr.backends.private_backend`): it never takes a slot of the application's
pool, and each statement on it gives up after ``time_limit`` seconds (``statement_timeout``
and ``lock_timeout``), so a catalog locked by another session makes a sample late by at most
that long instead of stalling the loop. When the server cannot be read
(:class:`~dbconnmgr.exceptions.ServerUnavailable`: it restarts, it is full, the network
went away, a lock outlasted the time limit) the tick yields an unreachable sample saying
since when and why, the private connection is closed so that the next tick connects afresh,
and the loop goes on: it resumes by itself when the server is back.

``on_sample`` is called with every sample (reachable or not) before it is yielded: it is
where recording, health evaluation and alerts plug in.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dbconnmgr.core.samples import Sample, SampleWindow
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.exceptions import ServerUnavailable

if TYPE_CHECKING:
    from dbconnmgr.backends.base import ConnectionBackend

SampleHook = Callable[[Sample], None]

#: The shortest time limit of a monitor's statements (seconds), whatever the interval.
MIN_TIME_LIMIT = 1.0


class _PrivateReader:
    """Snapshots of one alias through a private connection whose statements are bounded."""

    def __init__(self, using: str, time_limit: float) -> None:
        self.using = using
        self.time_limit = time_limit
        self._backend: ConnectionBackend | None = None

    def __call__(self, using: str) -> Snapshot:
        if self._backend is None:
            from dbconnmgr.backends import private_backend

            self._backend = private_backend(self.using, time_limit=self.time_limit)
        return self._backend.snapshot()

    def close(self) -> None:
        """Close the private connection (the next read connects afresh)."""
        from django.db import DatabaseError, InterfaceError

        backend, self._backend = self._backend, None
        if backend is not None:
            with contextlib.suppress(DatabaseError, InterfaceError):
                backend.connection.close()


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
        snapshot: reads a snapshot for an alias (default: through the monitor's private
            connection, see the module's docstring).
        time_limit: seconds each statement of the private connection may take, lock waits
            included (default: the interval, at least :data:`MIN_TIME_LIMIT`).
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
        snapshot: Callable[[str], Snapshot] | None = None,
        now: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], object] = time.sleep,
        time_limit: float | None = None,
    ) -> None:
        if not (interval > 0 and interval != float("inf")):
            raise ValueError(f"interval must be a number of seconds > 0, got {interval}")
        if time_limit is not None and not (0 < time_limit < float("inf")):
            raise ValueError(f"time_limit must be a number of seconds > 0, got {time_limit}")
        if aas_window is None:
            from dbconnmgr.app_settings import get_setting

            aas_window = float(get_setting("AAS_WINDOW"))
        self.using = using
        self.interval = float(interval)
        self.window = SampleWindow(using, aas_window)
        self.on_sample = on_sample
        self.time_limit = time_limit or max(self.interval, MIN_TIME_LIMIT)
        reader = None
        if snapshot is None:
            reader = snapshot = _PrivateReader(using, self.time_limit)
        self._reader = reader
        self._snapshot = snapshot
        self._now = now
        self._sleep = sleep

    def sample(self) -> Sample:
        """Take one sample now (reachable or not) and pass it to ``on_sample``."""
        try:
            snapshot = self._snapshot(self.using)
        except ServerUnavailable as exc:
            if self._reader is not None:
                self._reader.close()
            else:
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
        try:
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
        finally:
            self.close()

    def close(self) -> None:
        """Close the monitor's private connection (it reconnects on the next sample)."""
        if self._reader is not None:
            self._reader.close()


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
