"""Each action's options, declared once, and the command's parser composed from them.

An action's options are a frozen dataclass (:class:`Options`); each field is declared with
:func:`option`, which carries the flags and what argparse needs. From that one declaration:

- the parser of ``--action=NAME`` holds the common options and NAME's only, so
  ``--action=NAME --help`` lists those, and another action's option is a usage error
  (one line, exit 3) raised by the parser itself;
- the action reads a typed object (``self.options.interval``), not a dict;
- without a known action (``call_command()``, ``manage.py help``, no ``--action`` on the
  command line) the parser holds every action's options, and :func:`foreign_option` refuses
  the ones given to an action they do not belong to, with the same message.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Self

from django.core.management.base import CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from dbconnmgr.exceptions import EXIT_UNKNOWN

if TYPE_CHECKING:
    from dbconnmgr.cli import Action

#: The options every action takes, whatever ``--action`` is (besides Django's own).
COMMON = ("action", "database", "format")


def option(*flags: str, default: Any = None, **argparse_kwargs: Any) -> Any:
    """A field of an :class:`Options` dataclass: its default, flags and argparse keywords.

    Args:
        *flags: the option strings, the first one named in messages (``--idle-for``).
        default: the value when the option is not given.
        **argparse_kwargs: passed to ``add_argument()`` (``type``, ``action``, ``help``...).
    """
    metadata = {"flags": flags, "argparse": argparse_kwargs}
    return dataclasses.field(default=default, metadata=metadata)


class Declared(NamedTuple):
    """One declared option: its dest, flags, default and argparse keywords (``kwargs``)."""

    dest: str
    flags: tuple[str, ...]
    default: Any
    kwargs: Mapping[str, Any]

    @property
    def takes_value(self) -> bool:
        """False for switches (``--watch``, ``--noinput``), which take no argument."""
        return self.kwargs.get("action") not in ("store_true", "store_false")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Declare the option on ``parser``."""
        parser.add_argument(*self.flags, dest=self.dest, default=self.default, **self.kwargs)


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of an action's typed options; subclasses declare fields with :func:`option`."""

    @classmethod
    def declared(cls) -> tuple[Declared, ...]:
        """The options of this class, in declaration order (base classes' first)."""
        return tuple(
            Declared(f.name, f.metadata["flags"], f.default, f.metadata["argparse"])
            for f in dataclasses.fields(cls)
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """The options from the command's parsed options (missing ones get the default)."""
        return cls(**{f.name: values.get(f.name, f.default) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class NoOptions(Options):
    """The options of an action that takes none beyond the common ones."""


def _refusal(option: Declared, action: str, owners: Sequence[str]) -> str:
    return f"{option.flags[0]} does not apply to --action={action} (it is for: {', '.join(owners)})"


def owners_of_options(actions: Mapping[str, type[Action[Any]]]) -> dict[str, list[str]]:
    """Each option's dest -> the actions (in registry order) that take it."""
    owners: dict[str, list[str]] = {}
    for name, cls in actions.items():
        for declared in cls.options_type.declared():
            owners.setdefault(declared.dest, []).append(name)
    return owners


def action_named_in(
    argv: Sequence[str], actions: Mapping[str, object], default: str | None = None
) -> str | None:
    """The ``--action`` given on a command line, None when it is not an action's name.

    Without ``--action``: ``default`` (the action the command runs then), or None when
    ``-h``/``--help`` asks for every action's options. Read before the command's parser is
    built, so that the parser can hold that action's options only; anything wrong here is
    left for the full parser to report.
    """
    pre = _ActionOnly(add_help=False)
    pre.add_argument("--action")
    pre.add_argument("-h", "--help", action="store_true")
    try:
        known, _ = pre.parse_known_args(list(argv))
    except _NotFound:
        return None
    if known.action is None:
        return None if known.help else default
    return known.action if known.action in actions else None


class _NotFound(Exception):
    pass


class _ActionOnly(argparse.ArgumentParser):
    """Finds ``--action`` alone; its errors are left for the command's own parser."""

    def error(self, message: str) -> NoReturn:
        raise _NotFound(message)


def compose_parser(
    parser: argparse.ArgumentParser, actions: Mapping[str, type[Action[Any]]], chosen: str | None
) -> None:
    """Declare the common options and those of ``chosen`` (every action's when None).

    On a chosen action's parser, another action's option is refused when given:
    ``--action=status --watch`` is a usage error naming the actions it is for. Only the
    chosen action's module is imported for that; the other actions' declarations are looked
    up only when argparse leaves an argument unrecognized (:func:`_refuse_foreign`).
    """
    action_cls = actions[chosen] if chosen is not None and chosen in actions else None
    _add_common(parser, actions, action_cls)
    if action_cls is None:
        parser.epilog = "manage.py db_connections --action=NAME --help lists NAME's options only."
        for declared in _each_option_once(actions):
            declared.add_to(parser)
        return
    for declared in action_cls.options_type.declared():
        declared.add_to(parser)
    _refuse_foreign(parser, actions, action_cls)


def _refuse_foreign(
    parser: argparse.ArgumentParser,
    actions: Mapping[str, type[Action[Any]]],
    action_cls: type[Action[Any]],
) -> None:
    """What argparse leaves unrecognized on ``action_cls``'s parser is looked up among the
    other actions' options: one of those is refused by name (:func:`foreign_refusal`),
    anything else stays argparse's "unrecognized arguments".

    ``parse_known_args`` is the public step ``parse_args`` goes through (Django's
    ``call_command`` and ``run_from_argv`` call ``parse_args``); it is wrapped on the
    instance, as :func:`one_line_usage_errors` replaces ``error``.
    tests/test_command_parser.py fails if argparse stops calling it.
    """
    parse_known_args = parser.parse_known_args

    def parse(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        known, extras = parse_known_args(args, namespace)
        refusal = foreign_refusal(actions, action_cls.name, extras)
        if refusal is not None:
            parser.error(refusal)
        return known, extras

    parser.parse_known_args = parse  # type: ignore[method-assign,assignment]


def foreign_refusal(
    actions: Mapping[str, type[Action[Any]]], action: str, extras: Sequence[str]
) -> str | None:
    """The refusal of the first of ``extras`` (arguments ``action``'s parser did not
    recognize) that is another action's option, by its flag or by an abbreviation of one
    flag only (argparse takes abbreviations); None when none is."""
    flags: dict[str, Declared] | None = None
    for token in extras:
        if not token.startswith("--") or token == "--":
            continue
        if flags is None:  # the other actions' modules, imported on this error path only
            mine = {d.dest for d in actions[action].options_type.declared()}
            flags = {
                flag: declared
                for declared in _each_option_once(actions)
                if declared.dest not in mine
                for flag in declared.flags
            }
        given = token.split("=", 1)[0]
        found = flags.get(given)
        if found is None:
            matches = {d.dest: d for flag, d in flags.items() if flag.startswith(given)}
            found = next(iter(matches.values())) if len(matches) == 1 else None
        if found is not None:
            return _refusal(found, action, owners_of_options(actions)[found.dest])
    return None


def _each_option_once(actions: Mapping[str, type[Action[Any]]]) -> Iterator[Declared]:
    """Every action's options, each dest once (shared ones come from their first action)."""
    seen: set[str] = set()
    for cls in actions.values():
        for declared in cls.options_type.declared():
            if declared.dest not in seen:
                seen.add(declared.dest)
                yield declared


def _add_common(
    parser: argparse.ArgumentParser,
    actions: Mapping[str, type[Action[Any]]],
    action_cls: type[Action[Any]] | None,
) -> None:
    parser.add_argument(
        "--action",
        choices=list(actions),
        default="status",
        help=(
            f"{action_cls.name}: {action_cls.help}"
            if action_cls is not None
            else "; ".join(f"{name}: {cls.help}" for name, cls in actions.items())
        ),
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


def foreign_option(
    actions: Mapping[str, type[Action[Any]]], action: str, options: Mapping[str, Any]
) -> str | None:
    """The refusal of the first option given to ``action`` that belongs to another one.

    For the parser holding every action's options (``call_command()``): an option left at
    its default counts as not given.
    """
    owners = owners_of_options(actions)
    mine = {d.dest for d in actions[action].options_type.declared()}
    for cls in actions.values():
        for declared in cls.options_type.declared():
            if declared.dest in mine:
                continue
            if options.get(declared.dest, declared.default) != declared.default:
                return _refusal(declared, action, owners[declared.dest])
    return None


def one_line_usage_errors(parser: CommandParser) -> None:
    """Usage errors become one line on stderr and exit 3 (unknown), not a usage dump:
    exit 2 means critical only.

    argparse reports every usage error through ``parser.error(message)`` (documented as
    the method to override); Django builds the parser itself, so the method is replaced
    on the instance. tests/test_command_parser.py fails if argparse stops calling it.
    """

    def error(message: str) -> NoReturn:
        if parser.called_from_command_line:
            sys.stderr.write(f"{parser.prog}: error: {message}\n")
            sys.exit(EXIT_UNKNOWN)
        raise CommandError(f"Error: {message}", returncode=EXIT_UNKNOWN)

    parser.error = error  # type: ignore[method-assign]
