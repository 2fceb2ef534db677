"""``manage.py db_connections --action=ACTION``: a thin shell over dbconnmgr's library.

Exit codes, the same for every action (docs/index.md): 0 ok / done, 1 warning / over
budget / partly done, 2 critical (server full or unreachable), 3 unknown (usage errors,
bad settings or configuration, no permission to look).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from dbconnmgr.cli import (
    SEVERAL_ALIASES,
    OneLineOutput,
    reader_left,
    registry,
    resolve_aliases,
    worst_exit_code,
)
from dbconnmgr.cli.options import (
    action_named_in,
    compose_parser,
    foreign_option,
    one_line_usage_errors,
)
from dbconnmgr.exceptions import EXIT_UNKNOWN, DbConnMgrError, InvalidSetting, ServerUnavailable


class Command(BaseCommand):
    """See, check and clean up database connections."""

    help = "Inspect, check and clean up the database server's client connections."
    # An emergency tool must run even when unrelated system checks of the project fail
    # (and without paying for them): the server may be down to its last slots.
    requires_system_checks: list[str] = []
    #: The ``--action`` named on the command line; None: every action's options.
    _action: str | None = None

    @property
    def stderr(self) -> OutputWrapper:
        """Error lines, one line each (:class:`~dbconnmgr.cli.OneLineOutput`)."""
        return self._stderr

    @stderr.setter
    def stderr(self, wrapper: OutputWrapper) -> None:
        # BaseCommand sets a plain OutputWrapper in __init__ and execute(): write through it.
        self._stderr = (
            wrapper if isinstance(wrapper, OneLineOutput) else OneLineOutput(cast(TextIO, wrapper))
        )

    def run_from_argv(self, argv: list[str]) -> None:
        """From a command line, the parser is built for the ``--action`` given there (status
        when none is given, unless ``--help`` asks for every action's options)."""
        self._action = action_named_in(argv[2:], registry(), default="status")
        super().run_from_argv(argv)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """The common options and the chosen action's (every action's when none is known:
        ``call_command()``, ``manage.py help``); usage errors are one line, exit 3."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        one_line_usage_errors(parser)
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        compose_parser(parser, registry(), self._action)

    def handle(self, *args: Any, **options: Any) -> None:
        actions = registry()
        action_cls = actions[options["action"]]
        try:
            if self._action is None:  # a parser with every action's options (call_command)
                refused = foreign_option(actions, action_cls.name, options)
                if refused is not None:
                    raise CommandError(refused)
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
                reads = None
                if action_cls.reads_together:  # one concurrent, bounded read of them all
                    from dbconnmgr.readers import LazyReads

                    reads = LazyReads(aliases)
                for alias in aliases:
                    codes.append(
                        action_cls(
                            self,
                            {**options, "database": alias, "several_aliases": True, "reads": reads},
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
