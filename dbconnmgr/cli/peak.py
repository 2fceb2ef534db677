"""``--action=peak``: the busiest hours of the day, from recorded monitoring samples (and,
where the server keeps its own history, from that too); ``--action=rollup``: rebuild the
hourly rollup those reads use, from the samples."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.management.base import CommandError
from django.db import DatabaseError, connections
from django.utils import timezone

from dbconnmgr.cli import Action, whole_number
from dbconnmgr.cli.options import NoOptions, Options, option
from dbconnmgr.core.retained import RetainedPeaks

#: Days of samples --action=peak reads by default.
DEFAULT_DAYS = 7
#: The most days --days takes (a century; far more overflows dates).
MAX_DAYS = 36_500


@dataclass(frozen=True)
class PeakOptions(Options):
    """``--action=peak``'s options."""

    days: int | None = option(
        "--days",
        type=whole_number(1, MAX_DAYS),
        metavar="N",
        help=f"peak: how many days of recorded samples to read (default {DEFAULT_DAYS})",
    )


class PeakAction(Action[PeakOptions]):
    """Max, average and p95 of total connections per hour of day; the peak day and hour."""

    name = "peak"
    help = "busiest hours of the day from samples recorded by monitor --record (--days N)"
    options_type = PeakOptions

    def run(self) -> int:
        from dbconnmgr.core.samples import hourly_peaks
        from dbconnmgr.history import load_charts, peak_hours
        from dbconnmgr.live_view import peak_renderables, retained_peak_renderables
        from dbconnmgr.load_view import load_renderables
        from dbconnmgr.payloads import peak_payload, retained_peak_payload

        days = self.options.days or DEFAULT_DAYS
        if self.alias not in connections.settings:
            known = ", ".join(sorted(connections.settings)) or "none"
            raise CommandError(f"unknown database alias {self.alias!r} (configured: {known})")
        retained = self._retained(days)
        load = None
        try:
            report = peak_hours(self.alias, days)
            load = load_charts(
                self.alias,
                ("wait_class", "application", "code"),
                seconds=days * 86400,
                bucket_seconds=3600 if days <= 2 else 86400,
            )
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            hint = "; run: manage.py migrate dbconnmgr" if _missing_table(exc) else ""
            if retained is None:
                raise CommandError(f"cannot read recorded samples: {first}{hint}") from None
            report = hourly_peaks((), timezone.get_current_timezone())  # the server's only
        if self.format == "json":
            document = peak_payload(report, self.alias, days, load)
            if retained is not None:
                document["retained"] = retained_peak_payload(retained)
            self.write_json(document)
        else:
            self.renderer.print(
                *peak_renderables(report, self.alias, days, plain=self.renderer.plain),
                *(load_renderables(load, plain=self.renderer.plain) if load else ()),
            )
            if retained is not None:
                self.renderer.print(
                    *retained_peak_renderables(retained, self.alias, plain=self.renderer.plain)
                )
        return 0

    def _retained(self, days: int) -> RetainedPeaks | None:
        """The server's own history, where the engine keeps one
        (``capabilities.reports_retained_history``)."""
        from dbconnmgr.backends import backend_class_of, working_backend
        from dbconnmgr.exceptions import ServerUnavailable

        backend_class = backend_class_of(self.alias)
        if backend_class is None or not backend_class.capabilities.reports_retained_history:
            return None
        try:
            with working_backend(self.alias) as backend:
                return backend.retained_peaks(days, timezone.get_current_timezone())
        except ServerUnavailable as exc:
            raise CommandError(str(exc)) from None


class RollupAction(Action[NoOptions]):
    """Rebuild the hourly rollup of the alias's recorded samples from the samples."""

    name = "rollup"
    help = (
        "rebuild the hourly rollup peak and the admin charts read, from the samples recorded "
        "for --database (monitor --record keeps it up to date by itself)"
    )
    options_type = NoOptions

    def run(self) -> int:
        import time

        from dbconnmgr.history import coverage, rebuild_rollup

        started = time.monotonic()
        try:
            written = rebuild_rollup(self.alias)[self.alias]
            covered = coverage(self.alias)
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            hint = "; run: manage.py migrate dbconnmgr" if _missing_table(exc) else ""
            raise CommandError(f"cannot rebuild the rollup: {first}{hint}") from None
        seconds = round(time.monotonic() - started, 3)
        start, end = (None, None) if covered is None else covered
        if self.format == "json":
            self.write_json(
                {"alias": self.alias, "hours": written,
                 "start": None if start is None else start.isoformat(),
                 "end": None if end is None else end.isoformat(), "seconds": seconds}
            )  # fmt: skip
        elif start is None or end is None:
            self.command.stdout.write(
                f"No finished hour of recorded samples for database {self.alias!r}: "
                "nothing to roll up."
            )
        else:
            self.command.stdout.write(
                f"Rolled up {written:,} hour(s) of recorded samples for database "
                f"{self.alias!r} ({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC) "
                f"in {seconds:.1f} s."
            )
        return 0


def _missing_table(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "does not exist" in text or "no such table" in text
