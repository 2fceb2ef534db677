"""``--action=peak``: the busiest hours of the day, from recorded monitoring samples;
``--action=rollup``: rebuild the hourly rollup those reads use, from the samples."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.management.base import CommandError
from django.db import DatabaseError, connections

from dbconnmgr.cli import Action, whole_number
from dbconnmgr.cli.options import NoOptions, Options, option

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
        from dbconnmgr.history import peak_hours
        from dbconnmgr.live_view import peak_renderables
        from dbconnmgr.payloads import peak_payload

        days = self.options.days or DEFAULT_DAYS
        if self.alias not in connections.settings:
            known = ", ".join(sorted(connections.settings)) or "none"
            raise CommandError(f"unknown database alias {self.alias!r} (configured: {known})")
        try:
            report = peak_hours(self.alias, days)
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            hint = "; run: manage.py migrate dbconnmgr" if _missing_table(exc) else ""
            raise CommandError(f"cannot read recorded samples: {first}{hint}") from None
        if self.format == "json":
            self.write_json(peak_payload(report, self.alias, days))
        else:
            self.renderer.print(
                *peak_renderables(report, self.alias, days, plain=self.renderer.plain)
            )
        return 0


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
