"""Terminal tables (rich) built from snapshots and reports.

One :class:`Renderer` per output stream. It writes plain text (no colour, ASCII tables)
when the stream is not a terminal or ``NO_COLOR`` is set.

Text from the server or a client (application, role, database and host names, query text,
client addresses, PgBouncer's names, labels) is shown literally: it enters rendering only
through :func:`literal` (and :func:`assemble` for a line of several pieces), which wraps it
in a rich ``Text`` with control characters escaped (:func:`dbconnmgr.core.text.escape_controls`).
Markup is never parsed: the console is built with ``markup=False`` and a
:class:`DataTable` (made by :meth:`Renderer.table` and :meth:`Renderer.grid`) refuses a
``str`` cell, so a name like ``[link=http://x]click[/link]`` prints as those characters
and an ESC character as the four characters ``\\x1b``. To add a column or a panel::

    table = renderer.table("By code label", "label", "count")
    table.add_row(literal(label), literal(count))

A table whose columns cannot all be shown whole at the terminal's width is laid out
vertically, one block of ``column  value`` lines per row, instead of cutting a value
(``shop_w…``); only the columns named in ``wrap=`` (a reason, a finding) wrap in place.
Without a terminal (a pipe, a file, cron's mail) a table is as wide as its rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from dbconnmgr.backends import capabilities_of
from dbconnmgr.core.figures import Figures
from dbconnmgr.core.figures import format_seconds as format_seconds  # live_view imports it here
from dbconnmgr.core.health import DEFAULT_THRESHOLDS, Report, Severity
from dbconnmgr.core.pooler import PoolerSnapshot
from dbconnmgr.core.snapshot import STATES, Group, Snapshot
from dbconnmgr.core.termination import TerminationReport
from dbconnmgr.core.text import escape_controls
from dbconnmgr.core.thresholds import level


def literal(value: object, style: str = "") -> Text:
    """``value`` as rich ``Text`` shown exactly as it is: the one door for data into a table.

    Markup (``[bold]``, ``[link=...]``) stays text; control characters (ESC, newlines, C1,
    bidi overrides) are escaped so no terminal acts on them. None is an empty cell.

    Args:
        value: a name, a number, a message: anything ``str()`` turns into its text.
        style: a rich style for the whole text (``"bold red"``).
    """
    text = "" if value is None else str(value)
    return Text(escape_controls(text), style=style, overflow="fold")


def assemble(*parts: str | Text | tuple[str, str]) -> Text:
    """One line of several pieces, each shown literally: ``str``, ``(str, style)`` or a
    ``Text`` made by :func:`literal` (or another function of this module)."""
    line = Text(overflow="fold")
    for part in parts:
        if isinstance(part, Text):
            line.append_text(part)
        elif isinstance(part, tuple):
            line.append_text(literal(part[0], part[1]))
        else:
            line.append_text(literal(part))
    return line


class DataTable(Table):
    """A rich ``Table`` whose cells are ``Text`` only, laid out vertically when it cannot
    show every cell whole.

    Args:
        wrap: headers of the columns that may wrap in place (free text: a reason, a
            finding); the other columns are kept whole, or the table goes vertical.
    """

    def __init__(self, *args: Any, wrap: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wrap = frozenset(wrap)

    @classmethod
    def grid(  # type: ignore[override]
        cls, *headers: str, padding: tuple[int, int] = (0, 1), expand: bool = False
    ) -> DataTable:
        """A borderless grid (as rich's ``Table.grid``) that takes ``Text`` cells only."""
        return cls(
            *headers, box=None, padding=padding, collapse_padding=True, show_header=False,
            show_footer=False, show_edge=False, pad_edge=False, expand=expand,
        )  # fmt: skip

    def add_row(
        self, *renderables: RenderableType | None, style: Any = None, end_section: bool = False
    ) -> None:
        """Add a row; a ``str`` cell is refused (pass it through :func:`literal`).

        Raises:
            TypeError: a cell is a ``str``: it would be shown without its control
                characters escaped.
        """
        for cell in renderables:
            if isinstance(cell, str):
                raise TypeError(f"DataTable cells are literal() Text, not str: {cell!r}")
        super().add_row(*renderables, style=style, end_section=end_section)

    def _whole_width(self, console: Console, options: ConsoleOptions) -> int:
        """Width the table needs with every column but the ``wrap`` ones whole
        (padding and borders counted generously: a close call goes vertical)."""
        total = 0
        for column in self.columns:
            sizes = [Measurement.get(console, options, c) for c in (column.header, *column.cells)]
            if column.header in self.wrap:
                total += max((m.minimum for m in sizes), default=1)
            else:
                total += max((m.maximum for m in sizes), default=1)
        _, right, _, left = self.padding
        total += (left + right) * len(self.columns)
        if self.box is not None:
            total += len(self.columns) + 1
        return total

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for name in ("title", "caption"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, literal(value))
        if not self.show_header or self.row_count == 0:
            yield from super().__rich_console__(console, options)
            return
        if not getattr(console, "on_terminal", True):
            # A pipe or a file has no width to fit: one line per row, as wide as it takes
            # (Renderer.print does not crop plain output).
            natural = Measurement.get(console, options.update_width(10**6), self).maximum
            options = options.update_width(max(options.max_width, natural))
        needed = self._whole_width(console, options)
        if needed <= options.max_width:
            for column in self.columns:
                column.no_wrap = column.header not in self.wrap
            yield from super().__rich_console__(console, options)
            return
        yield from self._vertical(console, options)

    def _vertical(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """One block per row: ``header  value`` lines, values folded, never cut."""
        if self.title is not None:
            title = self.title if isinstance(self.title, Text) else literal(self.title)
            yield Text.assemble(title, style="bold")
        cells = [list(column.cells) for column in self.columns]
        for index in range(self.row_count):
            block = DataTable.grid(padding=(0, 2))
            block.add_column(style="bold", no_wrap=True)
            block.add_column(overflow="fold")
            for column, values in zip(self.columns, cells, strict=True):
                value = values[index]
                block.add_row(literal(column.header), value)
            yield from console.render(block, options)
            yield Text("")
        if self.caption is not None:
            yield self.caption


class Stream(Protocol):
    """What Django's OutputWrapper and sys.stdout have in common."""

    def write(self, msg: str, /) -> Any:
        """Write text."""

    def flush(self) -> Any:
        """Flush."""

    def isatty(self) -> bool:
        """True on a terminal."""


def _is_plain(stream: Stream) -> bool:
    return bool(os.environ.get("NO_COLOR")) or not stream.isatty()


class _Console(Console):
    """A Console that lets the command decide what a closed pipe means.

    rich's own reaction is ``SystemExit(1)``, which would replace ``health``'s verdict.
    """

    def __init__(self, *args: Any, on_terminal: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The stream is a terminal (with or without colours): tables fit its width.
        self.on_terminal = on_terminal

    def on_broken_pipe(self) -> None:
        """Stop writing and let the BrokenPipeError reach the command."""
        self.quiet = True
        raise BrokenPipeError


def make_console(stream: Stream) -> Console:
    """A rich Console writing to ``stream``: colour on terminals, plain text elsewhere.

    Markup, emoji codes and highlighting are off: a printed ``str`` is shown as written.
    """
    plain = _is_plain(stream)
    width = None
    terminal = stream.isatty()
    if not terminal:
        width = max(100, int(os.environ.get("COLUMNS", "0") or 0))
    return _Console(
        on_terminal=terminal,
        file=stream,
        no_color=plain,
        force_terminal=not plain and None,
        markup=False,
        highlight=False,
        emoji=False,
        width=width,
        color_system=None if plain else "auto",
    )


def utilization_style(percent: float, thresholds: Mapping[str, Any] | None = None) -> str:
    """Colour of a utilization percentage: ``bold red`` from ``UTILIZATION_CRITICAL``,
    ``yellow`` from ``UTILIZATION_WARNING``, else ``green`` (a None threshold is off).

    Args:
        percent: % of the usable slots.
        thresholds: THRESHOLDS keys (the project's: ``app_settings.thresholds()``); missing
            keys take the defaults.
    """
    merged = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    critical, warning = merged["UTILIZATION_CRITICAL"], merged["UTILIZATION_WARNING"]
    severity = level(
        percent,
        None if warning is None else float(warning),
        None if critical is None else float(critical),
    )
    return _UTILIZATION_STYLES[severity]


_UTILIZATION_STYLES = {
    Severity.OK: "green",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}


def _none(value: str | None, missing: str) -> Text:
    return literal(value or missing)


class Renderer:
    """Renders reports to one output stream."""

    def __init__(self, stream: Stream) -> None:
        self.console = make_console(stream)
        self.plain = _is_plain(stream)
        self.box = box.ASCII2 if self.plain else box.ROUNDED

    def table(self, title: str, *columns: str, wrap: Iterable[str] = ()) -> DataTable:
        """A table in the house style; numeric columns are right-aligned.

        Args:
            title: shown literally above it.
            columns: the headers.
            wrap: headers of the free-text columns that may wrap (the others stay whole:
                the table goes vertical rather than cut one).
        """
        table = DataTable(
            title=literal(title), box=self.box, title_justify="left", show_edge=True, wrap=wrap
        )
        for column in columns:
            table.add_column(column, justify="right" if column in _NUMERIC else "left")
        return table

    @staticmethod
    def grid(padding: tuple[int, int] = (0, 2)) -> DataTable:
        """A borderless label/value grid (a report's header), its labels bold."""
        grid = DataTable.grid(padding=padding)
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        return grid

    def print(self, *objects: Any) -> None:
        """Print rich renderables; a ``str`` is printed literally (as :func:`literal`).

        Plain output is not cropped: a table wider than the width keeps its rows whole.
        """
        self.console.print(
            *(literal(o) if isinstance(o, str) else o for o in objects), crop=not self.plain
        )

    def status(
        self,
        snapshot: Snapshot,
        limit: int | None = None,
        thresholds: Mapping[str, Any] | None = None,
    ) -> None:
        """The ``status`` report: limits, utilization, states, breakdowns, oldest sessions.

        Utilization is coloured by ``thresholds`` (the defaults when None).
        """
        f = Figures.of(snapshot)
        usable_pct = f["utilization_percent"]
        header = self.grid()
        header.add_row(
            literal("Database alias"), literal(f"{snapshot.alias} (database {f['database']})")
        )
        engine = capabilities_of(snapshot.vendor)
        header.add_row(
            literal("Server"),
            literal(f"{engine.display_name} {f['version']} (as {f['current_user']})"),
        )
        header.add_row(
            literal("Slots"),
            literal(
                f"max_connections {f['max_connections']}, "
                f"superuser_reserved {f['superuser_reserved_connections']}, "
                f"reserved {f['reserved_connections']} -> usable {f['usable_connections']}"
            ),
        )
        header.add_row(
            literal("Connections"),
            assemble(
                f"{f['total_connections']} in use, {f['free_connections']} free; ",
                (f"{usable_pct}% of usable", utilization_style(usable_pct, thresholds)),
                f", {f['max_connections_utilization_percent']}% of max_connections",
            ),
        )
        if f["database_limits"] or f["role_limits"]:
            caps = [f"database {k}: {v}" for k, v in sorted(f["database_limits"].items())]
            caps += [f"role {k}: {v}" for k, v in sorted(f["role_limits"].items())]
            header.add_row(literal("Limits"), literal(", ".join(caps)))
        figures = {
            k: v for k, v in snapshot.extras.items() if v is not None and not isinstance(v, dict)
        }
        if figures:
            header.add_row(
                literal(f"{engine.display_name} figures"),
                literal(", ".join(f"{k} {v}" for k, v in figures.items())),
            )
        for label, text in f.shown("table"):
            header.add_row(literal(label), literal(text))
        if f["visibility"] == "restricted":
            header.add_row(
                literal("Visibility"),
                literal(
                    f"restricted: {f['hidden_connections']} session(s) of other roles are "
                    f"hidden; grant {engine.full_visibility_grant} for full figures",
                    style="bold yellow",
                ),
            )
        self.print(header)
        self.print()

        states = self.table("By state", "state", "count")
        for state, count in snapshot.by_state().items():
            if count == 0 and (state == "unknown" or state not in engine.states):
                continue
            states.add_row(literal(state), literal(count))
        self.print(states)

        for title, groups in (
            ("By application", snapshot.by_application(limit)),
            ("By user", snapshot.by_user(limit)),
            ("By database", snapshot.by_database(limit)),
            ("By client address", snapshot.by_client(limit)),
            ("By code", snapshot.by_code(limit) if _has_codes(snapshot) else []),
        ):
            if groups or title != "By code":
                self.print(self._group_table(title, groups))
        if snapshot.waiting_connections:
            self.print(self.lock_waits(snapshot, limit))
        wlm = snapshot.extras.get("wlm")
        if isinstance(wlm, dict):  # query queues, where the engine has them (Redshift)
            self.print(self.wlm_queues(wlm))

    def wlm_queues(self, wlm: Mapping[str, Any]) -> DataTable | Text:
        """The WLM queues: slots, queries running and waiting (connections are not slots)."""
        if not wlm.get("visible"):
            return Text("WLM queues: not read (their system views are superuser-only)")
        table = self.table(
            "WLM queues (query slots; a connection does not make a slot)",
            "service class", "queue", "slots", "running", "slots in use", "queued",
            "longest wait",
        )  # fmt: skip
        for q in wlm.get("queues") or ():
            table.add_row(
                literal(q["service_class"]), literal(q["name"]),
                literal("auto" if q["slots"] is None else q["slots"]), literal(q["executing"]),
                literal(q["slots_in_use"]), literal(q["queued"]),
                literal(format_seconds(q["longest_queued_seconds"])),
            )  # fmt: skip
        return table

    def pgbouncer(self, pooler: PoolerSnapshot, limit: int | None = None) -> None:
        """The PgBouncer part of ``status``: its settings, pools and clients by application."""
        self.print()
        header = self.grid()
        header.add_row(literal("PgBouncer"), literal(f"{pooler.version} at {pooler.console}"))
        header.add_row(
            literal("Settings"),
            literal(
                f"pool_mode {pooler.pool_mode}, default_pool_size "
                f"{pooler.setting('default_pool_size')}, reserve_pool_size "
                f"{pooler.setting('reserve_pool_size')}, max_client_conn "
                f"{pooler.setting('max_client_conn')}, max_db_connections "
                f"{pooler.setting('max_db_connections')}, max_user_connections "
                f"{pooler.setting('max_user_connections')}"
            ),
        )
        header.add_row(
            literal("Clients"),
            literal(
                f"{pooler.client_connections} connected, {pooler.waiting_clients} waiting "
                f"(longest wait {pooler.maxwait_seconds:g}s)"
            ),
        )
        header.add_row(
            literal("Server connections"),
            literal(
                f"{pooler.server_connections} open, at most {pooler.max_server_connections()} "
                "(pool sizes plus reserve, capped by max_db/max_user_connections)"
            ),
        )
        self.print(header)
        self.print()
        pools = self.table(
            "PgBouncer pools (size: pool_size+reserve)", "pool", "mode", "cl_active",
            "cl_waiting", "sv_active", "sv_idle", "sv_used", "size", "maxwait",
        )  # fmt: skip
        for p in pooler.pools:
            pools.add_row(
                literal(f"{p.database}/{p.user}"), literal(p.pool_mode),
                literal(p.active_clients), literal(p.waiting_clients), literal(p.active_servers),
                literal(p.idle_servers), literal(p.used_servers),
                literal(f"{p.pool_size}+{p.reserve_pool_size}"),
                literal(format_seconds(p.maxwait_seconds)),
            )  # fmt: skip
        self.print(pools)
        apps = self.table(
            "PgBouncer clients by application", "application", "count", "states", wrap={"states"}
        )
        for name, count, states in pooler.by_application(limit):
            apps.add_row(
                literal(name),
                literal(count),
                literal(", ".join(f"{k} {v}" for k, v in sorted(states.items()))),
            )
        self.print(apps)

    def lock_waits(self, snapshot: Snapshot, limit: int | None = None) -> DataTable:
        """Sessions waiting on a lock, longest first, with who blocks them."""
        by_pid = {c.pid: c for c in snapshot.connections}
        table = self.table(
            "Lock waits", "pid", "application", "user", "waiting", "blocked by", wrap={"blocked by"}
        )
        waiting = sorted(snapshot.waiting_connections, key=lambda c: -(c.state_seconds or 0))
        for conn in waiting[:limit]:
            blockers = ", ".join(
                f"{pid} ({by_pid[pid].application_name or '(none)'})" if pid in by_pid else str(pid)
                for pid in conn.blocking_pids
            )
            table.add_row(
                literal(conn.pid),
                _none(conn.application_name, "(none)"),
                _none(conn.user, "unknown"),
                literal(format_seconds(conn.state_seconds)),
                literal(blockers or "-"),
            )
        return table

    def _group_table(self, title: str, groups: list[Group]) -> DataTable:
        table = self.table(title, "name", "count", "active", "idle", "idle in txn", "other")
        for group in groups:
            s = group.by_state
            iit = s.get("idle in transaction", 0) + s.get("idle in transaction (aborted)", 0)
            other = group.count - s.get("active", 0) - s.get("idle", 0) - iit
            table.add_row(
                literal(group.name),
                literal(group.count),
                literal(s.get("active", 0)),
                literal(s.get("idle", 0)),
                literal(iit),
                literal(other),
            )
        return table

    def termination(self, report: TerminationReport) -> None:
        """The close-idle / force-close / cancel report: who, what was selected, what
        happened. Each selected session's user, application, database and client are shown
        whole: a table when they fit the width, one block per session otherwise."""
        header = self.grid()
        header.add_row(literal("Action"), literal(report.action))
        header.add_row(
            literal("Database"), literal(f"alias {report.alias}, database {report.database}")
        )
        header.add_row(literal("Performed by"), literal(report.actor.describe()))
        header.add_row(literal("Criteria"), literal(report.criteria.describe()))
        if report.local is not None:
            local = report.local
            size = local.pool_current_size
            pool = f"pool closed ({size} connection(s))" if local.pool_closed else "no pool"
            own = "closed" if local.connection_closed else "was not open"
            header.add_row(literal("This process"), literal(f"own connection {own}; {pool}"))
        style = "bold red" if report.failed else ("yellow" if not report.executed else "green")
        if not report.executed and not report.dry_run and not report.cancelled:
            style = "yellow"
        header.add_row(literal("Result"), literal(report.summary(), style=style))
        self.print(header)
        self.print()
        if report.selected:
            by_pid = {r.pid: r for r in report.results}
            table = self.table(
                f"Selected ({len(report.selected)})",
                "pid", "user", "application", "database", "client", "state", "age", "outcome",
                "reason",
                wrap={"reason"},
            )  # fmt: skip
            for c in report.selected:
                result = by_pid[c.pid]
                table.add_row(
                    literal(c.pid),
                    _none(c.user, "?"),
                    _none(c.application_name, "(none)"),
                    _none(c.database, "?"),
                    literal(c.client),
                    literal(c.state),
                    literal(format_seconds(c.state_seconds)),
                    literal(result.outcome, style=_OUTCOME_STYLES.get(result.outcome, "")),
                    literal(result.reason),
                )
            self.print(table)
        for finding in report.findings:
            self.print(literal(f"! {finding}", style="yellow"))


_OUTCOME_STYLES = {
    "terminated": "green",
    "would_terminate": "cyan",
    "not_exited": "bold red",
    "query_cancelled": "green",
    "would_cancel": "cyan",
    "query_still_running": "bold red",
    "permission_denied": "bold red",
    "protected": "yellow",
    "no_longer_matching": "yellow",
}

_NUMERIC = {"count", "active", "idle", "idle in txn", "other", "pid", "age", "waiting", *STATES}
_NUMERIC |= {"cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "size"}
_NUMERIC |= {"maxwait"}


_SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.WARNING: "yellow",
    Severity.UNKNOWN: "bold magenta",
    Severity.CRITICAL: "bold red",
}


def render_health(renderer: Renderer, report: Report, perfdata: str = "") -> None:
    """The ``health`` report: the Nagios status line, then one row per check."""
    line = report.summary() + (f" | {perfdata}" if perfdata else "")
    # Nagios reads the first line: never wrap it.
    renderer.console.print(literal(line, style=_SEVERITY_STYLE[report.status]), soft_wrap=True)
    table = renderer.table(
        f"Health of {report.alias}", "severity", "check", "finding", wrap={"finding"}
    )
    for finding in report.findings:
        table.add_row(
            literal(finding.severity.label, style=_SEVERITY_STYLE[finding.severity]),
            literal(finding.key),
            literal(finding.message),
        )
    renderer.print(table)


def _has_codes(snapshot: Snapshot) -> bool:
    """Whether some session carries a code label (attribution on somewhere): only then is
    the status table's "By code" shown."""
    return any(c.code for c in snapshot.others())
