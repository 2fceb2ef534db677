"""``--action=status``: connections by state, application, user, database and client; the
pools of the PgBouncer in front of the alias when ``DBCONNMGR["PGBOUNCER"]`` names one."""

from __future__ import annotations

from dataclasses import dataclass

from dbconnmgr.app_settings import get_setting, thresholds
from dbconnmgr.backends import working_backend
from dbconnmgr.cli import Action, whole_number
from dbconnmgr.cli.options import Options, option
from dbconnmgr.core.pooler import PoolerSnapshot, PoolerUnavailable
from dbconnmgr.exceptions import EXIT_UNKNOWN, DbConnMgrError
from dbconnmgr.pooler import read_pooler

#: The most rows per breakdown --limit takes.
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class StatusOptions(Options):
    """``--action=status``'s options."""

    limit: int | None = option(
        "--limit",
        type=whole_number(1, MAX_LIMIT),
        help="rows per breakdown (default: DBCONNMGR['STATUS_LIMIT'], 10)",
    )


class StatusAction(Action[StatusOptions]):
    """Print one snapshot of the server's connections."""

    name = "status"
    help = "connections by state, application, user, database and client; utilization"
    options_type = StatusOptions
    reads_together = True

    def run(self) -> int:
        limit = self.options.limit or get_setting("STATUS_LIMIT")
        # The table colours utilization by the project's thresholds (read before any I/O).
        colours = thresholds() if self.format == "table" else None
        read = self.given_read()
        if read is None:
            with working_backend(self.alias) as backend:
                snapshot = backend.snapshot()
        elif isinstance(read, DbConnMgrError):
            raise read
        else:
            snapshot = read
        pooler = read_pooler(self.alias)
        if self.format == "json":
            # The pure builder (payloads re-exports it) spares this path payloads' imports.
            from dbconnmgr.core.builders import status_payload

            self.write_json(status_payload(snapshot, limit, pooler))
        else:
            self.renderer.status(snapshot, limit, thresholds=colours)
            if isinstance(pooler, PoolerSnapshot):
                self.renderer.pgbouncer(pooler, limit)
        if isinstance(pooler, PoolerUnavailable):
            # The server part was shown; the PgBouncer part could not be looked at.
            self.command.stderr.write(f"error: {pooler.message}")
            return EXIT_UNKNOWN
        return 0
