"""Terminal tables (rich) and JSON payloads built from snapshots.

One :class:`Renderer` per output stream. It writes plain text (no colour, ASCII tables)
when the stream is not a terminal or ``NO_COLOR`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dbconnmgr.backends import capabilities_of
from dbconnmgr.core.figures import Figures
from dbconnmgr.core.figures import format_seconds as format_seconds  # live_view imports it here
from dbconnmgr.core.health import DEFAULT_THRESHOLDS, Report, Severity
from dbconnmgr.core.pooler import PoolerSnapshot
from dbconnmgr.core.snapshot import STATES, Group, Snapshot
from dbconnmgr.core.termination import TerminationReport
from dbconnmgr.core.thresholds import level


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

    def on_broken_pipe(self) -> None:
        """Stop writing and let the BrokenPipeError reach the command."""
        self.quiet = True
        raise BrokenPipeError


def make_console(stream: Stream) -> Console:
    """A rich Console writing to ``stream``: colour on terminals, plain text elsewhere."""
    plain = _is_plain(stream)
    width = None
    if plain:
        width = max(100, int(os.environ.get("COLUMNS", "0") or 0))
    return _Console(
        file=stream,  # type: ignore[arg-type]
        no_color=plain,
        force_terminal=not plain and None,
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


class Renderer:
    """Renders reports to one output stream."""

    def __init__(self, stream: Stream) -> None:
        self.console = make_console(stream)
        self.plain = _is_plain(stream)
        self.box = box.ASCII2 if self.plain else box.ROUNDED

    def table(self, title: str, *columns: str) -> Table:
        """A table in the house style; numeric columns are right-aligned by the caller."""
        table = Table(title=title, box=self.box, title_justify="left", show_edge=True)
        for column in columns:
            table.add_column(column, justify="right" if column in _NUMERIC else "left")
        return table

    def print(self, *objects: Any) -> None:
        """Print rich renderables or strings."""
        self.console.print(*objects)

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
        header = Table.grid(padding=(0, 2))
        header.add_column(style="bold")
        header.add_column()
        header.add_row("Database alias", f"{snapshot.alias} (database {f['database']})")
        engine = capabilities_of(snapshot.vendor)
        header.add_row("Server", f"{engine.display_name} {f['version']} (as {f['current_user']})")
        header.add_row(
            "Slots",
            f"max_connections {f['max_connections']}, "
            f"superuser_reserved {f['superuser_reserved_connections']}, "
            f"reserved {f['reserved_connections']} -> usable {f['usable_connections']}",
        )
        header.add_row(
            "Connections",
            Text.assemble(
                f"{f['total_connections']} in use, {f['free_connections']} free; ",
                (f"{usable_pct}% of usable", utilization_style(usable_pct, thresholds)),
                f", {f['max_connections_utilization_percent']}% of max_connections",
            ),
        )
        if f["database_limits"] or f["role_limits"]:
            caps = [f"database {k}: {v}" for k, v in sorted(f["database_limits"].items())]
            caps += [f"role {k}: {v}" for k, v in sorted(f["role_limits"].items())]
            header.add_row("Limits", ", ".join(caps))
        if snapshot.extras:
            header.add_row(
                f"{engine.display_name} figures",
                ", ".join(f"{k} {v}" for k, v in snapshot.extras.items() if v is not None),
            )
        for label, text in f.shown("table"):
            header.add_row(label, text)
        if f["visibility"] == "restricted":
            header.add_row(
                "Visibility",
                Text(
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
            states.add_row(state, str(count))
        self.print(states)

        for title, groups in (
            ("By application", snapshot.by_application(limit)),
            ("By user", snapshot.by_user(limit)),
            ("By database", snapshot.by_database(limit)),
            ("By client address", snapshot.by_client(limit)),
        ):
            self.print(self._group_table(title, groups))
        if snapshot.waiting_connections:
            self.print(self.lock_waits(snapshot, limit))

    def pgbouncer(self, pooler: PoolerSnapshot, limit: int | None = None) -> None:
        """The PgBouncer part of ``status``: its settings, pools and clients by application."""
        self.print()
        header = Table.grid(padding=(0, 2))
        header.add_column(style="bold")
        header.add_column()
        header.add_row("PgBouncer", f"{pooler.version} at {pooler.console}")
        header.add_row(
            "Settings",
            f"pool_mode {pooler.pool_mode}, default_pool_size "
            f"{pooler.setting('default_pool_size')}, reserve_pool_size "
            f"{pooler.setting('reserve_pool_size')}, max_client_conn "
            f"{pooler.setting('max_client_conn')}, max_db_connections "
            f"{pooler.setting('max_db_connections')}, max_user_connections "
            f"{pooler.setting('max_user_connections')}",
        )
        header.add_row(
            "Clients",
            f"{pooler.client_connections} connected, {pooler.waiting_clients} waiting "
            f"(longest wait {pooler.maxwait_seconds:g}s)",
        )
        header.add_row(
            "Server connections",
            f"{pooler.server_connections} open, at most {pooler.max_server_connections()} "
            "(pool sizes plus reserve, capped by max_db/max_user_connections)",
        )
        self.print(header)
        self.print()
        pools = self.table(
            "PgBouncer pools (size: pool_size+reserve)", "pool", "mode", "cl_active",
            "cl_waiting", "sv_active", "sv_idle", "sv_used", "size", "maxwait",
        )  # fmt: skip
        for p in pooler.pools:
            pools.add_row(
                f"{p.database}/{p.user}", p.pool_mode, str(p.active_clients),
                str(p.waiting_clients), str(p.active_servers), str(p.idle_servers),
                str(p.used_servers), f"{p.pool_size}+{p.reserve_pool_size}",
                format_seconds(p.maxwait_seconds),
            )  # fmt: skip
        self.print(pools)
        apps = self.table("PgBouncer clients by application", "application", "count", "states")
        for name, count, states in pooler.by_application(limit):
            apps.add_row(name, str(count), ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
        self.print(apps)

    def lock_waits(self, snapshot: Snapshot, limit: int | None = None) -> Table:
        """Sessions waiting on a lock, longest first, with who blocks them."""
        by_pid = {c.pid: c for c in snapshot.connections}
        table = self.table("Lock waits", "pid", "application", "user", "waiting", "blocked by")
        waiting = sorted(snapshot.waiting_connections, key=lambda c: -(c.state_seconds or 0))
        for conn in waiting[:limit]:
            blockers = ", ".join(
                f"{pid} ({by_pid[pid].application_name or '(none)'})" if pid in by_pid else str(pid)
                for pid in conn.blocking_pids
            )
            table.add_row(
                str(conn.pid),
                conn.application_name or "(none)",
                conn.user or "unknown",
                format_seconds(conn.state_seconds),
                blockers or "-",
            )
        return table

    def _group_table(self, title: str, groups: list[Group]) -> Table:
        table = self.table(title, "name", "count", "active", "idle", "idle in txn", "other")
        for group in groups:
            s = group.by_state
            iit = s.get("idle in transaction", 0) + s.get("idle in transaction (aborted)", 0)
            other = group.count - s.get("active", 0) - s.get("idle", 0) - iit
            table.add_row(
                group.name,
                str(group.count),
                str(s.get("active", 0)),
                str(s.get("idle", 0)),
                str(iit),
                str(other),
            )
        return table

    def termination(self, report: TerminationReport) -> None:
        """The close-idle / force-close report: who, what was selected, what happened."""
        header = Table.grid(padding=(0, 2))
        header.add_column(style="bold")
        header.add_column()
        header.add_row("Action", report.action)
        header.add_row("Database", f"alias {report.alias}, database {report.database}")
        header.add_row("Performed by", report.actor.describe())
        header.add_row("Criteria", report.criteria.describe())
        if report.local is not None:
            local = report.local
            size = local.pool_current_size
            pool = f"pool closed ({size} connection(s))" if local.pool_closed else "no pool"
            own = "closed" if local.connection_closed else "was not open"
            header.add_row("This process", f"own connection {own}; {pool}")
        style = "bold red" if report.failed else ("yellow" if not report.executed else "green")
        if not report.executed and not report.dry_run and not report.cancelled:
            style = "yellow"
        header.add_row("Result", Text(report.summary(), style=style))
        self.print(header)
        self.print()
        if report.selected:
            by_pid = {r.pid: r for r in report.results}
            table = self.table(
                f"Selected ({len(report.selected)})",
                "pid", "user", "application", "database", "state", "age", "outcome", "reason",
            )  # fmt: skip
            for column in table.columns:
                # the reason column takes the wrapping; identifiers and outcomes stay whole
                column.no_wrap = column.header in {"pid", "age", "outcome"}
            for c in report.selected:
                result = by_pid[c.pid]
                table.add_row(
                    str(c.pid),
                    c.user or "?",
                    c.application_name or "(none)",
                    c.database or "?",
                    c.state,
                    format_seconds(c.state_seconds),
                    Text(result.outcome, style=_OUTCOME_STYLES.get(result.outcome, "")),
                    result.reason,
                )
            self.print(table)
        for finding in report.findings:
            self.print(Text(f"! {finding}", style="yellow"))


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
    renderer.console.print(Text(line, style=_SEVERITY_STYLE[report.status]), soft_wrap=True)
    table = renderer.table(f"Health of {report.alias}", "severity", "check", "finding")
    for finding in report.findings:
        table.add_row(
            Text(finding.severity.label, style=_SEVERITY_STYLE[finding.severity]),
            finding.key,
            finding.message,
        )
    renderer.print(table)
