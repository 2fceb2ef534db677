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
where recording, health evaluation and alerts plug in. :class:`SamplePolicy` is the hook
``--action=monitor`` uses (``iter_samples(record=True, alert=True)`` gives it to Python
callers): it records reachable samples in the app's tables (:class:`Recorder`) and sends the
alerts of each sample's health findings.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dbconnmgr.core.samples import Sample, SampleWindow
from dbconnmgr.core.snapshot import Snapshot
from dbconnmgr.exceptions import DbConnMgrError, ServerUnavailable

if TYPE_CHECKING:
    from dbconnmgr.backends.base import ConnectionBackend
    from dbconnmgr.core.health import Report, Thresholds

SampleHook = Callable[[Sample], None]
#: Says one line to a person (the command: its stderr; Python callers: a log record).
Warn = Callable[[str], object]

#: The shortest time limit of a monitor's statements (seconds), whatever the interval.
MIN_TIME_LIMIT = 1.0
#: Seconds between two prunings of old samples while recording.
PRUNE_EVERY = 3600.0

logger = logging.getLogger("dbconnmgr.monitor")


def default_time_limit(interval: float) -> float:
    """The time limit of a monitor's statements: the interval, at least MIN_TIME_LIMIT."""
    return max(float(interval), MIN_TIME_LIMIT)


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
        self.time_limit = time_limit or default_time_limit(self.interval)
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


class RecordingTablesMissing(DbConnMgrError):
    """dbconnmgr's tables were never migrated on the database samples are recorded in."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


class Recorder:
    """Stores each reachable sample in the app's tables (``ConnectionSample``).

    Every statement runs in a transaction whose statements give up after ``time_limit``
    seconds: a lock on the samples table (a long migration, ``LOCK TABLE``) costs one
    failed recording, said once through ``warn`` until recording works again, and never
    stalls the monitor. Old samples are pruned (``RETENTION_DAYS``) once an hour.

    Args:
        time_limit: seconds each recording statement may take, lock waits included.
        warn: says a recording failure (default: a warning on the ``dbconnmgr.monitor``
            logger).
    """

    def __init__(self, time_limit: float, *, warn: Warn | None = None) -> None:
        self.time_limit = time_limit
        self._warn: Warn = warn or logger.warning
        self._last_prune: float | None = None
        self._failing = False

    @property
    def alias(self) -> str:
        """The database the samples are written to (the router's choice)."""
        from django.db import router

        from dbconnmgr.models import ConnectionSample

        return router.db_for_write(ConnectionSample) or "default"

    @contextlib.contextmanager
    def _bounded(self) -> Iterator[None]:
        """A transaction on the recording database whose statements give up in time."""
        from django.db import connections, transaction

        from dbconnmgr.backends import backend_class_of

        alias = self.alias
        with transaction.atomic(using=alias):
            backend_class = backend_class_of(alias)
            if backend_class is not None:  # the samples may live in a database we do not read
                with connections[alias].cursor() as cursor:
                    backend_class.limit_transaction(cursor, self.time_limit)
            yield

    def _close(self) -> None:
        from django.db import DatabaseError, connections

        with contextlib.suppress(DatabaseError):
            connections[self.alias].close()

    def check_tables(self) -> None:
        """Fail at once, with the fix, when the app's tables were never migrated.

        A database that is down right now is no error here: the samples say so and
        recording resumes when it is back.

        Raises:
            RecordingTablesMissing: the tables are missing (``manage.py migrate dbconnmgr``).
        """
        from django.db import OperationalError, ProgrammingError

        from dbconnmgr.models import ConnectionSample

        try:
            with self._bounded():
                ConnectionSample.objects.filter(pk=0).exists()
        except ProgrammingError as exc:
            raise RecordingTablesMissing(self._missing_tables(exc)) from None
        except OperationalError as exc:
            if "no such table" in str(exc):
                raise RecordingTablesMissing(self._missing_tables(exc)) from None
            self._close()

    def _missing_tables(self, exc: BaseException) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"--record: dbconnmgr's tables are missing on database {self.alias!r} "
            f"({first}); run: manage.py migrate dbconnmgr"
        )

    def __call__(self, sample: Sample) -> None:
        """Record ``sample`` when it read the server; prune when an hour has passed."""
        from django.db import DatabaseError

        from dbconnmgr.history import prune_samples, record_sample

        if not sample.reachable:
            return
        try:
            with self._bounded():
                record_sample(sample)
            now = time.monotonic()
            if self._last_prune is None or now - self._last_prune >= PRUNE_EVERY:
                with self._bounded():
                    prune_samples()
                self._last_prune = now
        except DatabaseError as exc:
            if not self._failing:
                self._warn(f"dbconnmgr: could not record samples (will retry): {_first_line(exc)}")
            self._failing = True
            self._close()
        else:
            self._failing = False


def project_thresholds(warn: Warn | None = None) -> Thresholds | None:
    """``DBCONNMGR["THRESHOLDS"]``, validated; None (said once through ``warn``) when invalid.

    Invalid thresholds do not stop a monitor: it samples and records as usual, but judges
    no snapshot (an unreachable server still alerts); the command exits 3 (UNKNOWN).
    """
    from django.core.exceptions import ImproperlyConfigured

    from dbconnmgr import app_settings
    from dbconnmgr.core.health import resolve_thresholds, threshold_errors

    try:
        merged = app_settings.thresholds()
        errors = threshold_errors(merged)
    except (TypeError, ValueError, ImproperlyConfigured) as exc:
        errors = [str(exc)]
    if not errors:
        return resolve_thresholds(merged)
    (warn or logger.warning)(
        f"UNKNOWN: DBCONNMGR['THRESHOLDS'] is invalid ({'; '.join(errors)}): sampling "
        "goes on without health findings or alerts"
    )
    return None


def sample_report(
    sample: Sample, thresholds: Thresholds | Mapping[str, Any] | None
) -> Report | None:
    """The health findings of one sample (:func:`dbconnmgr.health.judge`, PgBouncer's
    included): its snapshot evaluated, or why it has none.

    ``thresholds`` None (invalid project thresholds): a snapshot is not judged (None), but
    a server that cannot be read is still reported, since that needs no thresholds
    (PgBouncer's checks then take the defaults).
    """
    from dbconnmgr.core.health import Thresholds as Defaults
    from dbconnmgr.health import judge

    if sample.snapshot is not None:
        if thresholds is None:
            return None
        return judge(
            sample.alias,
            sample.snapshot,
            thresholds,
            refused_connections=sample.refused_connections,
            refused_full=sample.refused_full,
        )
    if sample.problem is not None:
        return judge(sample.alias, sample.problem, thresholds or Defaults())
    return None


class SamplePolicy:
    """What every sample feeds, reachable or not: the ``on_sample`` of ``--action=monitor``.

    In order: the recording (``recorder``, when given), then the sample's health findings
    sent to :func:`dbconnmgr.alerts.dispatch` (cooldown, escalation and recovery live
    there), then ``then`` (the caller's own hook).

    Args:
        recorder: stores reachable samples (None: no recording).
        thresholds: judge health with these; None judges no snapshot (only unreachable
            samples alert): :func:`project_thresholds` returns None when they are invalid.
        alert: send the alerts of each sample's findings.
        then: called last with each sample.
    """

    def __init__(
        self,
        *,
        recorder: Recorder | None = None,
        thresholds: Thresholds | Mapping[str, Any] | None = None,
        alert: bool = True,
        then: SampleHook | None = None,
    ) -> None:
        self.recorder = recorder
        self.thresholds = thresholds
        self.alert = alert
        self.then = then

    def __call__(self, sample: Sample) -> None:
        if self.recorder is not None:
            self.recorder(sample)
        if self.alert:
            report = sample_report(sample, self.thresholds)
            if report is not None:
                from dbconnmgr import alerts

                alerts.dispatch(report)
        if self.then is not None:
            self.then(sample)


def iter_samples(
    using: str = "default",
    interval: float = 5.0,
    count: int | None = None,
    *,
    on_sample: SampleHook | None = None,
    aas_window: float | None = None,
    record: bool = False,
    alert: bool = False,
) -> Iterator[Sample]:
    """Sample ``using`` every ``interval`` seconds, ``count`` times (forever when None).

    See :class:`Monitor` for the arguments. Unreachable servers do not raise: the sample
    says so (``sample.reachable`` is False) and the loop resumes when the server is back.

    Args:
        record: store each reachable sample in the app's tables, as ``--record`` does
            (:class:`Recorder`; failures are logged on ``dbconnmgr.monitor``).
        alert: send the alerts of each sample's health findings (the project's
            THRESHOLDS; when they are invalid, a warning, and only unreachable samples
            alert), as the monitor command does.

    Raises:
        ValueError: ``interval`` is not > 0 or ``count`` is less than 1 (at once).
        RecordingTablesMissing: ``record`` and dbconnmgr's tables were never migrated.
    """
    if count is not None and count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    hook = on_sample
    recorder = Recorder(default_time_limit(interval)) if record else None
    if record or alert:
        hook = SamplePolicy(
            recorder=recorder,
            thresholds=project_thresholds() if alert else None,
            alert=alert,
            then=on_sample,
        )
    monitor = Monitor(using, interval, aas_window=aas_window, on_sample=hook)
    if recorder is not None:
        recorder.check_tables()
    return monitor.samples(count)
