"""The live view of ``--action=monitor`` and the tables of ``--action=peak`` (rich).

Nothing here reads the database: it turns :class:`~dbconnmgr.core.samples.Sample` and
:class:`~dbconnmgr.core.samples.PeakReport` objects into rich renderables; their JSON
documents are in :mod:`dbconnmgr.payloads`.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rich import box
from rich.console import Group as RichGroup
from rich.console import RenderableType
from rich.text import Text

from dbconnmgr import render
from dbconnmgr.app_settings import thresholds
from dbconnmgr.backends import capabilities_of
from dbconnmgr.core.retained import RetainedPeaks
from dbconnmgr.core.samples import PeakReport, Sample
from dbconnmgr.core.snapshot import Connection
from dbconnmgr.render import DataTable, assemble, format_seconds, literal

#: Characters of the utilization bar.
BAR_WIDTH = 30


# -- live view ---------------------------------------------------------------------------------
def utilization_style(percent: float) -> str:
    """Colour of a utilization figure: thresholds from ``DBCONNMGR["THRESHOLDS"]``."""
    try:
        limits = thresholds()
    except ValueError:  # invalid THRESHOLDS (InvalidSetting): the monitor says so on stderr
        return "default"
    return render.utilization_style(percent, limits)


def utilization_bar(percent: float, *, plain: bool = False, width: int = BAR_WIDTH) -> Text:
    """``[#####.....]``: the share of usable slots in use, coloured by the thresholds."""
    filled = min(width, max(0, round(percent * width / 100)))
    full, empty = ("#", ".") if plain else ("█", "░")
    return assemble(
        "[", (full * filled, utilization_style(percent)), (empty * (width - filled), "dim"), "]"
    )


def _signed(value: int | None) -> Text:
    if not value:
        return Text("")
    return literal(f"{value:+d}", style="red" if value > 0 else "green")


def _clock(value: datetime) -> str:
    return timezone.localtime(value).strftime("%H:%M:%S")


def _describe(conn: Connection | None) -> Text:
    if conn is None:
        return literal("none")
    app = conn.application_name or "(none)"
    return literal(f"{format_seconds(conn.state_seconds)} (pid {conn.pid}, {conn.user}, {app})")


class MonitorView:
    """Builds the live view of ``--action=monitor --watch`` from successive samples.

    Args:
        interval: seconds between samples (shown in the header).
        count: how many samples the monitor takes (None: until interrupted).
        limit: rows of the by-application table.
        plain: ASCII boxes and bar (no colour terminal).
    """

    def __init__(
        self, *, interval: float, count: int | None, limit: int = 10, plain: bool = False
    ) -> None:
        self.interval = interval
        self.count = count
        self.limit = limit
        self.plain = plain
        self.box = box.ASCII2 if plain else box.ROUNDED
        self.last_reachable: Sample | None = None

    def update(self, sample: Sample) -> RenderableType:
        """The view after ``sample``: its figures, or the last ones under an outage banner."""
        if sample.reachable:
            self.last_reachable = sample
        shown = self.last_reachable
        parts: list[RenderableType] = [self._header(sample, shown)]
        if not sample.reachable:
            since = sample.unreachable_since or sample.taken_at
            down = (sample.taken_at - since).total_seconds()
            parts.append(
                literal(
                    f"UNREACHABLE since {_clock(since)} ({format_seconds(down)}): "
                    f"{sample.error}; retrying every {format_seconds(self.interval)}",
                    style="bold red",
                )
            )
        elif sample.recovered_from is not None:
            down = (sample.taken_at - sample.recovered_from).total_seconds()
            parts.append(
                literal(
                    f"reachable again (unreachable from {_clock(sample.recovered_from)}, "
                    f"about {format_seconds(down)})",
                    style="bold green",
                )
            )
        if shown is not None:
            parts.extend(self._figures(shown, stale=not sample.reachable))
        return RichGroup(*parts)

    def _header(self, sample: Sample, shown: Sample | None) -> Text:
        of = f"/{self.count}" if self.count else ""
        server = ""
        if shown is not None and shown.snapshot is not None:
            limits = shown.snapshot.limits
            version = limits.version.split(" ", 1)[0]  # "15.18", not the packager's suffix
            server = (
                f" - {capabilities_of(shown.snapshot.vendor).display_name} {version} as "
                f"{limits.current_user}, "
                f"max_connections {limits.max_connections}"
            )
        return assemble(
            ("dbconnmgr monitor", "bold"),
            f": {sample.alias}{server}",
            Text("\n"),  # ours: the line break between the two header lines
            (
                f"sample {sample.sequence}{of} at {_clock(sample.taken_at)}, "
                f"every {format_seconds(self.interval)}",
                "dim",
            ),
        )

    def _figures(self, sample: Sample, *, stale: bool) -> list[RenderableType]:
        pct = sample.utilization_percent or 0.0
        total = sample.total_connections or 0
        change = sample.change
        grid = render.Renderer.grid()
        grid.add_row(
            literal("Utilization"),
            assemble(
                utilization_bar(pct, plain=self.plain),
                " ",
                (f"{pct}%", utilization_style(pct)),
                f" of {sample.usable_connections} usable: {total} in use ",
                _signed(change.total_connections if change else None),
            ),
        )
        grid.add_row(
            literal("Average active"),
            literal(
                f"AAS {sample.aas:.2f} over the last {format_seconds(sample.aas_window_seconds)} "
                f"({sample.aas_samples} sample(s)); active now {sample.active_connections}"
            ),
        )
        grid.add_row(literal("Waiting on locks"), literal(self._waiting(sample)))
        grid.add_row(literal("Longest idle in txn"), _describe(sample.longest_idle_in_transaction))
        if sample.snapshot is not None and sample.snapshot.visibility == "restricted":
            grid.add_row(
                literal("Visibility"),
                literal(
                    f"restricted: {sample.snapshot.hidden_connections} session(s) hidden; "
                    f"grant {capabilities_of(sample.snapshot.vendor).full_visibility_grant} "
                    "for full figures",
                    style="yellow",
                ),
            )

        states = DataTable(title=literal("By state"), box=self.box, title_justify="left")
        states.add_column("state")
        states.add_column("count", justify="right")
        states.add_column("change", justify="right")
        for state, n in (sample.by_state or {}).items():
            delta = change.by_state.get(state) if change else None
            if n == 0 and not delta and state not in ("active", "idle", "idle in transaction"):
                continue
            states.add_row(literal(state), literal(n), _signed(delta))

        apps = DataTable(title=literal("By application"), box=self.box, title_justify="left")
        apps.add_column("application")
        apps.add_column("count", justify="right")
        apps.add_column("change", justify="right")
        by_app = sample.by_application or {}
        for name, n in list(by_app.items())[: self.limit]:
            delta = change.by_application.get(name) if change else None
            apps.add_row(literal(name), literal(n), _signed(delta))
        gone = [n for n in (change.by_application if change else {}) if n not in by_app]
        for name in gone[: max(0, self.limit - len(by_app))]:
            delta = change.by_application[name] if change else None
            apps.add_row(literal(name), literal(0), _signed(delta))
        if len(by_app) > self.limit:
            apps.caption = literal(f"{len(by_app) - self.limit} more application(s)")

        side_by_side = DataTable.grid(padding=(0, 2))
        side_by_side.add_row(states, apps)
        parts: list[RenderableType] = [grid, side_by_side]
        if self.count != 1:
            parts.append(Text("Ctrl-C to stop", style="dim"))
        if stale:
            parts.insert(0, literal(f"last reading, at {_clock(sample.taken_at)}:", style="dim"))
        return parts

    def _waiting(self, sample: Sample) -> str:
        n = sample.waiting_connections or 0
        if not n or sample.snapshot is None:
            return str(n)
        waiting = sample.snapshot.waiting_connections[:3]
        detail = ", ".join(
            f"pid {c.pid} blocked by {', '.join(map(str, c.blocking_pids)) or '?'}" for c in waiting
        )
        more = f" and {n - len(waiting)} more" if n > len(waiting) else ""
        return f"{n}: {detail}{more}"


# -- peak table --------------------------------------------------------------------------------
def peak_renderables(
    report: PeakReport, alias: str, days: int, *, plain: bool = False
) -> list[RenderableType]:
    """The ``--action=peak`` report as rich renderables."""
    tz = timezone.get_current_timezone_name()
    if not report.samples:
        # The command on a line of its own that rich never breaks: it is copied and pasted.
        return [
            RichGroup(
                literal(
                    f"No recorded samples for database {alias!r} in the last {days} day(s). "
                    "Record some with:"
                ),
                Text(
                    "  manage.py db_connections --action=monitor --watch --record",
                    no_wrap=True,
                    overflow="ignore",
                ),
            )
        ]
    head = render.Renderer.grid()
    head.add_row(literal("Database alias"), literal(alias))
    assert report.first is not None and report.last is not None
    head.add_row(
        literal("Samples"),
        literal(
            f"{report.samples} from {report.first:%Y-%m-%d %H:%M} to {report.last:%Y-%m-%d %H:%M} "
            f"({tz}), last {days} day(s)"
        ),
    )
    peak = report.peak_hour
    if peak is not None:
        head.add_row(
            literal("Peak hour of day"),
            literal(
                f"{peak.hour:02d}:00-{peak.hour:02d}:59: p95 {peak.p95}, max {peak.max}, "
                f"average {peak.average}"
            ),
        )
    if report.peak_day is not None and report.peak_at is not None:
        head.add_row(
            literal("Peak day and hour"),
            literal(
                f"{report.peak_day.isoformat()} {report.peak_day_hour:02d}:00: "
                f"{report.peak_connections} connections (at {report.peak_at:%H:%M:%S})"
            ),
        )
    table = _hours_table(
        f"Total connections per hour of day ({tz})", "samples", report, plain=plain
    )
    return [head, Text(""), table]


def _hours_table(title: str, count: str, report: PeakReport, *, plain: bool) -> DataTable:
    """One row per hour of day (the peak hour bold); ``count`` names what ``samples`` counts."""
    peak = report.peak_hour
    table = DataTable(
        title=literal(title), box=box.ASCII2 if plain else box.ROUNDED, title_justify="left"
    )
    for column in ("hour", count, "max", "average", "p95"):
        table.add_column(column, justify="left" if column == "hour" else "right")
    for h in report.hours:
        style = "bold" if peak is not None and h.hour == peak.hour else None
        table.add_row(
            literal(f"{h.hour:02d}:00"), literal(h.samples), literal(h.max),
            literal(f"{h.average:.1f}"), literal(h.p95), style=style,
        )  # fmt: skip
    return table


def retained_peak_renderables(
    retained: RetainedPeaks, alias: str, *, plain: bool = False
) -> list[RenderableType]:
    """The server's own history in ``--action=peak``: sessions open at once per hour of day
    and, where the reader may see them, the WLM apex per queue and hour (UTC)."""
    tz = timezone.get_current_timezone_name()
    report = retained.sessions
    head = render.Renderer.grid()
    head.add_row(
        literal("Retained history"),
        literal(
            f"{alias}: sessions kept by the server from {retained.since:%Y-%m-%d %H:%M} to "
            f"{retained.until:%Y-%m-%d %H:%M} UTC (no recorded samples needed)"
        ),
    )
    if retained.visibility != "full":
        head.add_row(
            literal("Visibility"), Text("restricted: only the reader's own sessions", "yellow")
        )
    peak = report.peak_hour
    if peak is not None and report.peak_day is not None:
        head.add_row(
            literal("Peak"),
            literal(
                f"hour of day {peak.hour:02d}:00 (max {peak.max}); busiest clock hour "
                f"{report.peak_day.isoformat()} {report.peak_day_hour:02d}:00 with "
                f"{report.peak_connections} sessions open at once"
            ),
        )
    table = _hours_table(
        f"Most sessions open at once per hour of day ({tz}; days: days seen)",
        "days",
        report,
        plain=plain,
    )
    parts: list[RenderableType] = [Text(""), head, Text(""), table]
    if retained.wlm_apex is None:
        parts.append(Text("WLM apex: not read (the queues' views are superuser-only)"))
    elif not retained.wlm_apex:
        parts.append(Text("WLM apex: no query held a slot of a user queue in the history kept"))
    else:
        apex = DataTable(
            title=literal("WLM apex: most query slots held at once per queue and hour (UTC)"),
            box=box.ASCII2 if plain else box.ROUNDED,
            title_justify="left",
        )
        for column in ("service class", "hour", "max slots", "queue slots"):
            apex.add_column(column, justify="left" if column == "hour" else "right")
        for a in retained.wlm_apex:
            apex.add_row(
                literal(a.service_class), literal(f"{a.hour:%Y-%m-%d %H}:00"),
                literal(a.max_slots),
                literal("auto" if a.slots is None or a.slots < 0 else a.slots),
            )  # fmt: skip
        parts.append(apex)
    return parts
