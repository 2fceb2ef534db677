"""``--action=monitor``: sample the server every interval; live view, JSON Lines, recording."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import DatabaseError, OperationalError, ProgrammingError, connections, router

from dbconnmgr.app_settings import get_setting
from dbconnmgr.cli import Action, finite_number, positive_int, reader_left
from dbconnmgr.exceptions import EXIT_CRITICAL, EXIT_OK

if TYPE_CHECKING:  # imported in run(): every db_connections call builds this parser
    from dbconnmgr.core.samples import Sample
    from dbconnmgr.monitor_loop import Monitor

#: Seconds between two prunings of old samples while recording.
PRUNE_EVERY = 3600.0


#: The longest --interval: one day.
MAX_INTERVAL = 86400.0

#: argparse type of --interval: a finite number of seconds > 0.
positive_float = finite_number(0, MAX_INTERVAL, above=True, what="a number of seconds")


class _Unterminated:
    """A Django OutputWrapper seen as a plain text stream (no newline added per write)."""

    def __init__(self, out: Any) -> None:
        self._out = out

    def write(self, text: str, /) -> int:
        self._out.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return bool(self._out.isatty())


class MonitorAction(Action):
    """Sample connections once, or every interval with --watch."""

    name = "monitor"
    help = (
        "sample connections (--watch: live view every --interval until Ctrl-C or --count; "
        "JSON Lines when not a terminal; --record stores samples)"
    )
    options = ("watch", "interval", "count", "record")
    one_run_for_aliases = True

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--watch",
            action="store_true",
            help="monitor: keep sampling every --interval until Ctrl-C (or --count samples)",
        )
        parser.add_argument(
            "--interval",
            type=positive_float,
            default=None,
            metavar="SECONDS",
            help="monitor: seconds between samples (default: DBCONNMGR['MONITOR_INTERVAL'], 5)",
        )
        parser.add_argument(
            "--count",
            type=positive_int,
            default=None,
            metavar="N",
            help="monitor: stop after N samples (default: 1, or until Ctrl-C with --watch)",
        )
        parser.add_argument(
            "--record",
            action="store_true",
            help="monitor: store each sample in the app's tables (see --action=peak)",
        )

    def run(self) -> int:
        interval = self.opts.get("interval") or get_setting("MONITOR_INTERVAL")
        count: int | None = self.opts.get("count") or (None if self.opts.get("watch") else 1)
        self.record = bool(self.opts.get("record"))
        self._last_prune: float | None = None
        self._record_failing = False
        self.last: Sample | None = None
        aliases: list[str] = self.opts.get("aliases") or [self.alias]
        if len(aliases) > 1 and self.format != "json" and self.command.stdout.isatty():
            raise CommandError(
                f"the live view shows one alias; for {', '.join(aliases)} pass --format=json "
                "(one JSON line per alias per sample)"
            )
        self.thresholds = self._project_thresholds()
        try:
            from dbconnmgr.monitor_loop import Monitor

            monitors = [
                Monitor(alias, float(interval), on_sample=self.on_sample) for alias in aliases
            ]
        except (TypeError, ValueError) as exc:
            raise CommandError(f"DBCONNMGR settings: {exc}") from None
        self.time_limit = monitors[0].time_limit
        if self.record:
            self._check_tables()
        if len(monitors) == 1:
            code = self._sample(monitors[0], count)
        else:
            code = self._sample_together(monitors, count)
        from dbconnmgr.core.health import Severity

        # Health could never be judged: UNKNOWN, whatever the samples said.
        return int(Severity.UNKNOWN) if self.thresholds is None else code

    def _sample(self, monitor: Monitor, count: int | None) -> int:
        stream = self.command.stdout
        try:
            if self.format == "json" or not stream.isatty():
                from dbconnmgr.payloads import sample_payload

                for sample in monitor.samples(count):
                    stream.write(json.dumps(sample_payload(sample), default=str))
                    stream.flush()
                    self.last = sample
            else:
                self._live(monitor, count)
        except KeyboardInterrupt:
            return 0
        except BrokenPipeError:  # `monitor | head`: the reader left, which is not an error
            reader_left()
            return 0
        # All --count samples taken: say whether the last one could read the server.
        return EXIT_OK if self.last is None else self._exit_code(self.last)

    def _sample_together(self, monitors: list[Monitor], count: int | None) -> int:
        """Several aliases, JSON Lines: every interval, one line per alias, in order.

        Exits with the worst code of the aliases' last samples (as health does).
        """
        from dbconnmgr.cli import worst_exit_code
        from dbconnmgr.payloads import sample_payload

        stream = self.command.stdout
        last: dict[str, Sample] = {}
        with contextlib.ExitStack() as stack:
            # Each monitor keeps its own schedule; after the first one waits out the
            # interval, the others are due at once: all aliases sampled every interval.
            loops = [m.samples(count) for m in monitors]
            for monitor in monitors:  # a loop left early closes its private connection
                stack.callback(monitor.close)
            try:
                for samples in zip(*loops, strict=False):
                    for sample in samples:
                        stream.write(json.dumps(sample_payload(sample), default=str))
                        last[sample.alias] = sample
                    stream.flush()
            except KeyboardInterrupt:
                return 0
            except BrokenPipeError:
                reader_left()
                return 0
        return worst_exit_code([self._exit_code(sample) for sample in last.values()])

    @staticmethod
    def _exit_code(sample: Sample) -> int:
        """OK when the sample read the server, else the problem's code."""
        if sample.reachable:
            return EXIT_OK
        problem = sample.problem
        return problem.exit_code if problem is not None else EXIT_CRITICAL

    def _live(self, monitor: Monitor, count: int | None) -> None:
        from rich.live import Live

        from dbconnmgr.live_view import MonitorView
        from dbconnmgr.render import make_console

        view = MonitorView(
            interval=monitor.interval,
            count=count,
            limit=int(get_setting("STATUS_LIMIT")),
            plain=self.renderer.plain,
        )
        # Rich writes partial lines and cursor moves: Django's OutputWrapper must not end
        # each write with a newline, or every refresh leaves a line behind.
        console = make_console(_Unterminated(self.command.stdout))
        if count == 1:
            for sample in monitor.samples(1):
                console.print(view.update(sample))
                self.last = sample
            return
        with Live(console=console, auto_refresh=False, redirect_stderr=False) as live:
            for sample in monitor.samples(count):
                live.update(view.update(sample), refresh=True)
                self.last = sample

    def on_sample(self, sample: Sample) -> None:
        """Per-sample work, run for every sample (reachable or not) before it is shown.

        The one call site for what each sample feeds: recording (``--record``) and the
        health findings (:func:`dbconnmgr.health.judge`, PgBouncer's included) and alerts.
        """
        if self.record:
            self._record(sample)
        from dbconnmgr import alerts
        from dbconnmgr.core.health import Thresholds
        from dbconnmgr.health import judge

        if sample.snapshot is not None:
            if self.thresholds is None:  # said once at the start; no findings, no alerts
                return
            report = judge(
                sample.alias,
                sample.snapshot,
                self.thresholds,
                refused_connections=sample.refused_connections,
                refused_full=sample.refused_full,
            )
        elif sample.problem is not None:
            # Invalid THRESHOLDS judge nothing of a snapshot, but a server that cannot be
            # read still alerts (PgBouncer's checks then take the defaults).
            report = judge(sample.alias, sample.problem, self.thresholds or Thresholds())
        else:
            return
        alerts.dispatch(report)  # cooldown, escalation and recovery live there

    def _project_thresholds(self) -> dict[str, Any] | None:
        """DBCONNMGR["THRESHOLDS"], validated; None (and one line on stderr) when invalid.

        Invalid thresholds do not stop the monitor: it samples, shows and records as
        usual, but judges no health (no alerts) and exits 3 (UNKNOWN) at the end.
        """
        from dbconnmgr import app_settings
        from dbconnmgr.core.health import threshold_errors

        try:
            merged = app_settings.thresholds()
            errors = threshold_errors(merged)
        except (TypeError, ValueError, ImproperlyConfigured) as exc:
            errors = [str(exc)]
        if not errors:
            return merged
        self.command.stderr.write(
            f"UNKNOWN: DBCONNMGR['THRESHOLDS'] is invalid ({'; '.join(errors)}): sampling "
            "goes on without health findings or alerts"
        )
        return None

    # -- recording ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _bounded(self) -> Iterator[None]:
        """A transaction on the recording database whose statements give up in time.

        A lock on the samples table (a long migration, ``LOCK TABLE``) must cost one failed
        recording, said on stderr, not stall the monitor.
        """
        from django.db import transaction

        alias = self._recording_alias()
        with transaction.atomic(using=alias):
            from dbconnmgr.backends import BACKENDS

            backend_class = BACKENDS.get(connections[alias].vendor)
            if backend_class is not None:  # the samples may live in a database we do not read
                with connections[alias].cursor() as cursor:
                    backend_class.limit_transaction(cursor, self.time_limit)
            yield

    def _recording_alias(self) -> str:
        from dbconnmgr.models import ConnectionSample

        return router.db_for_write(ConnectionSample) or "default"

    def _check_tables(self) -> None:
        """Fail at once, with the fix, when the app's tables were never migrated."""
        from dbconnmgr.models import ConnectionSample

        try:
            with self._bounded():
                ConnectionSample.objects.filter(pk=0).exists()
        except ProgrammingError as exc:
            raise CommandError(self._missing_tables(exc)) from None
        except OperationalError as exc:
            if "no such table" in str(exc):
                raise CommandError(self._missing_tables(exc)) from None
            # the database may be down right now: the monitor reports that and retries
            with contextlib.suppress(DatabaseError):
                connections[self._recording_alias()].close()

    def _missing_tables(self, exc: BaseException) -> str:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"--record: dbconnmgr's tables are missing on database {self._recording_alias()!r} "
            f"({first}); run: manage.py migrate dbconnmgr"
        )

    def _record(self, sample: Sample) -> None:
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
            if not self._record_failing:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                sys.stderr.write(f"dbconnmgr: could not record samples (will retry): {first}\n")
                sys.stderr.flush()
            self._record_failing = True
            with contextlib.suppress(DatabaseError):
                connections[self._recording_alias()].close()
        else:
            self._record_failing = False
