"""``manage.py db_connections --action=ACTION``: a thin shell over dbconnmgr's library.

Exit codes, the same for every action (docs/index.md): 0 ok / done, 1 warning / over
budget / partly done, 2 critical (server full or unreachable), 3 unknown (usage errors,
bad settings or configuration, no permission to look).
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from dbconnmgr.cli import (
    SEVERAL_ALIASES,
    reader_left,
    registry,
    resolve_aliases,
    worst_exit_code,
)
from dbconnmgr.exceptions import EXIT_UNKNOWN, DbConnMgrError, InvalidSetting, ServerUnavailable


class Command(BaseCommand):
    """See, check and clean up database connections."""

    help = "Inspect, check and clean up the database server's client connections."
    # An emergency tool must run even when unrelated system checks of the project fail
    # (and without paying for them): the server may be down to its last slots.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Usage errors become one line on stderr and exit 3 (unknown), not a usage dump:
        2 means critical only."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str) -> NoReturn:
            if parser.called_from_command_line:
                sys.stderr.write(f"{parser.prog}: error: {message}\n")
                sys.exit(EXIT_UNKNOWN)
            raise CommandError(f"Error: {message}", returncode=EXIT_UNKNOWN)

        parser.error = error  # type: ignore[method-assign]
        self._parser = parser  # handle() reads defaults and flag names from it
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        actions = registry()
        parser.add_argument(
            "--action",
            choices=list(actions),
            default="status",
            help="; ".join(f"{name}: {cls.help}" for name, cls in actions.items()),
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help='the database alias to inspect (default: "default"); for status, health and '
            'monitor also several, comma-separated, or "all" (one document per alias, per '
            "sample for monitor; health and monitor exit with the worst code)",
        )
        parser.add_argument(
            "--format",
            choices=["table", "json"],
            default="table",
            help="table (rich, plain when not a terminal) or json",
        )
        for action in actions.values():
            action.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        actions = registry()
        action_cls = actions[options["action"]]
        try:
            self._refuse_foreign_options(action_cls.name, options)
            aliases = resolve_aliases(options["database"])
            if len(aliases) == 1:
                code = action_cls(self, {**options, "database": aliases[0]}).run()
            elif action_cls.name not in SEVERAL_ALIASES:
                raise CommandError(
                    f"--action={action_cls.name} takes one --database alias, got "
                    f"{options['database']!r} (several: {', '.join(sorted(SEVERAL_ALIASES))})"
                )
            elif not aliases:
                raise CommandError("--database=all: no alias of a database dbconnmgr reads")
            elif action_cls.one_run_for_aliases:
                options = {**options, "database": aliases[0], "several_aliases": True}
                code = action_cls(self, {**options, "aliases": aliases}).run()
            else:
                codes = []
                for alias in aliases:
                    codes.append(
                        action_cls(
                            self, {**options, "database": alias, "several_aliases": True}
                        ).run()
                    )
                    if options["format"] != "json":  # JSON: one document per line
                        self.stdout.write("")
                code = worst_exit_code(codes)
            self.stdout.flush()  # here, not at exit, where a closed pipe would cost the code
        except InvalidSetting as exc:
            # One line naming the key, exit 3 (UNKNOWN): `manage.py check` says the same.
            self.stderr.write(f"{exc} (see manage.py check)")
            sys.exit(EXIT_UNKNOWN)
        except ServerUnavailable as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc
        except DbConnMgrError as exc:
            raise CommandError(str(exc), returncode=EXIT_UNKNOWN) from exc
        except CommandError as exc:
            # Raised by an action: a usage error, bad settings or missing tables.
            exc.returncode = EXIT_UNKNOWN
            raise
        except KeyboardInterrupt:
            code = 0
        except BrokenPipeError:  # `... | head`: the reader left before the end
            reader_left()
            code = 0
        if code:
            sys.exit(code)

    def _refuse_foreign_options(self, action: str, options: dict[str, Any]) -> None:
        """An option of another action, given explicitly, is an error rather than ignored."""
        owners: dict[str, list[str]] = {}
        for cls in registry().values():
            for dest in cls.options:
                owners.setdefault(dest, []).append(cls.name)
        # run_from_argv() and call_command() both build the parser before handle().
        parser = getattr(self, "_parser", None) or self.create_parser("manage.py", "db_connections")
        defaults = {a.dest: a.default for a in parser._actions}
        flags = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}
        for dest, names in owners.items():
            if action in names:
                continue
            if options.get(dest, defaults.get(dest)) != defaults.get(dest):
                flag = flags.get(dest, "--" + dest.replace("_", "-"))
                raise CommandError(
                    f"{flag} does not apply to --action={action} (it is for: {', '.join(names)})"
                )
