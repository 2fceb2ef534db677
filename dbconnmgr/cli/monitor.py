"""``--action=monitor``: sample the server every interval; live view, JSON Lines, recording."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError

from dbconnmgr.app_settings import get_setting
from dbconnmgr.cli import Action, finite_number, positive_int, reader_left
from dbconnmgr.cli.options import Options, option
from dbconnmgr.exceptions import EXIT_CRITICAL, EXIT_OK

if TYPE_CHECKING:  # imported in run(): every db_connections call builds this parser
    from dbconnmgr.core.samples import Sample
    from dbconnmgr.monitor_loop import Monitor
    from dbconnmgr.readers import SnapshotBatch

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


@dataclass(frozen=True)
class MonitorOptions(Options):
    """``--action=monitor``'s options."""

    watch: bool = option(
        "--watch",
        default=False,
        action="store_true",
        help="monitor: keep sampling every --interval until Ctrl-C (or --count samples)",
    )
    interval: float | None = option(
        "--interval",
        type=positive_float,
        metavar="SECONDS",
        help="monitor: seconds between samples (default: DBCONNMGR['MONITOR_INTERVAL'], 5)",
    )
    count: int | None = option(
        "--count",
        type=positive_int,
        metavar="N",
        help="monitor: stop after N samples (default: 1, or until Ctrl-C with --watch)",
    )
    record: bool = option(
        "--record",
        default=False,
        action="store_true",
        help="monitor: store each sample in the app's tables (see --action=peak)",
    )


def _say_on_stderr(text: str) -> None:
    from dbconnmgr.core.text import escape_controls

    sys.stderr.write(escape_controls(text) + "\n")
    sys.stderr.flush()


class MonitorAction(Action[MonitorOptions]):
    """Sample connections once, or every interval with --watch."""

    name = "monitor"
    help = (
        "sample connections (--watch: live view every --interval until Ctrl-C or --count; "
        "JSON Lines when not a terminal; --record stores samples)"
    )
    options_type = MonitorOptions
    one_run_for_aliases = True

    def run(self) -> int:
        from dbconnmgr.monitor_loop import (
            Monitor,
            Recorder,
            SamplePolicy,
            default_time_limit,
            project_thresholds,
        )

        interval = self.options.interval or get_setting("MONITOR_INTERVAL")
        count = self.options.count or (None if self.options.watch else 1)
        self.last: Sample | None = None
        aliases: list[str] = self.opts.get("aliases") or [self.alias]
        if len(aliases) > 1 and self.format != "json" and self.command.stdout.isatty():
            raise CommandError(
                f"the live view shows one alias; for {', '.join(aliases)} pass --format=json "
                "(one JSON line per alias per sample)"
            )
        thresholds = project_thresholds(warn=self.command.stderr.write)
        try:
            recorder = None
            if self.options.record:
                recorder = Recorder(default_time_limit(float(interval)), warn=_say_on_stderr)
            policy = SamplePolicy(recorder=recorder, thresholds=thresholds)
            batch = None
            if len(aliases) > 1:  # each tick reads them all at once (readers.SnapshotBatch)
                from dbconnmgr.readers import SnapshotBatch

                batch = SnapshotBatch(aliases, time_limit=default_time_limit(float(interval)))
            monitors = [
                Monitor(alias, float(interval), on_sample=policy, snapshot=batch)
                for alias in aliases
            ]
        except (TypeError, ValueError) as exc:
            raise CommandError(f"DBCONNMGR settings: {exc}") from None
        if recorder is not None:
            recorder.check_tables()  # RecordingTablesMissing: one line, exit 3
        if batch is None:
            code = self._sample(monitors[0], count)
        else:
            code = self._sample_together(monitors, batch, count)
        from dbconnmgr.core.health import Severity

        # Health could never be judged: UNKNOWN, whatever the samples said.
        return int(Severity.UNKNOWN) if thresholds is None else code

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

    def _sample_together(
        self, monitors: list[Monitor], batch: SnapshotBatch, count: int | None
    ) -> int:
        """Several aliases, JSON Lines: every interval, one line per alias, in order.

        Each tick reads every alias at once (``batch``: at most
        :data:`~dbconnmgr.readers.DEFAULT_MAX_READERS` readers open, each closed after its
        snapshot, none counted by another alias), then each monitor makes its sample of
        its alias's snapshot. Exits with the worst code of the aliases' last samples (as
        health does).
        """
        from dbconnmgr.cli import worst_exit_code
        from dbconnmgr.payloads import sample_payload

        stream = self.command.stdout
        last: dict[str, Sample] = {}
        interval = monitors[0].interval
        taken = 0
        next_at = time.monotonic()
        try:
            while count is None or taken < count:
                if taken:
                    next_at += interval
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:  # late: start again from now rather than firing a burst
                        next_at = time.monotonic()
                batch.read()
                for monitor in monitors:
                    sample = monitor.sample()
                    stream.write(json.dumps(sample_payload(sample), default=str))
                    last[sample.alias] = sample
                stream.flush()
                taken += 1
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
