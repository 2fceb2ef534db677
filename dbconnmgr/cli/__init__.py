"""The actions of ``manage.py db_connections``: one module per action, one registry.

An action declares its own options as a typed dataclass (:mod:`dbconnmgr.cli.options`); the
command's parser is composed from those declarations.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from dbconnmgr.cli.options import Options
from dbconnmgr.core.text import escape_controls

if TYPE_CHECKING:
    from dbconnmgr.core.snapshot import Snapshot
    from dbconnmgr.exceptions import DbConnMgrError
    from dbconnmgr.render import Renderer


OptionsT = TypeVar("OptionsT", bound=Options)


class OneLineOutput(OutputWrapper):
    """The command's stderr: each message one line, whatever names it quotes.

    Error lines quote the server's and the client's words (``role "..." does not exist``,
    a PgBouncer's answer): control characters and newlines in them are escaped
    (:func:`~dbconnmgr.core.text.escape_controls`), so a name cannot clear the screen,
    plant a link or forge a second line.
    """

    def write(  # type: ignore[override]  # Django's signature, as its stubs declare it
        self,
        msg: str = "",
        style_func: Callable[[str], str] | None = None,
        ending: str | None = None,
    ) -> None:
        """Write ``msg`` with its control characters escaped, then the line's ending."""
        end = self.ending if ending is None else ending
        if end and msg.endswith(end):
            msg = msg[: -len(end)]
        super().write(escape_controls(msg), style_func, end)


class Action(Generic[OptionsT]):
    """One ``--action``. Subclasses set ``name``, ``help``, ``options_type`` and implement run().

    ``options_type`` declares the options this action takes beyond the common ones
    (``--database``, ``--format``); run() reads them, typed, from ``self.options``.
    """

    name: ClassVar[str]
    help: ClassVar[str]
    options_type: type[OptionsT]
    formats: ClassVar[tuple[str, ...]] = ("table", "json")
    #: Several aliases run as one call with ``opts["aliases"]`` (monitor samples them
    #: together) rather than one call per alias.
    one_run_for_aliases: ClassVar[bool] = False
    #: With several aliases, each run takes its snapshot from one concurrent read of them
    #: all (:meth:`given_read`) rather than reading on its own.
    reads_together: ClassVar[bool] = False

    def __init__(self, command: BaseCommand, opts: dict[str, Any]) -> None:
        self.command = command
        self.opts = opts
        self.alias: str = opts["database"]
        self.format: str = opts["format"]
        self.options: OptionsT = self.options_type.from_mapping(opts)

    @cached_property
    def renderer(self) -> Renderer:
        """The terminal renderer; rich is imported only when a table is drawn."""
        from dbconnmgr.render import Renderer

        return Renderer(self.command.stdout)

    def run(self) -> int:
        """Do the work and return the process exit code."""
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------
    def given_read(self) -> Snapshot | DbConnMgrError | None:
        """With several aliases, this alias's snapshot from the read of them all (or the
        error that kept it from being read); None when the action reads on its own."""
        reads = self.opts.get("reads")
        return None if reads is None else reads.get(self.alias)

    def write_json(self, payload: Any) -> None:
        """Write one JSON document to stdout (one line each when several aliases are read)."""
        if self.opts.get("several_aliases"):
            self.command.stdout.write(json.dumps(payload, default=str))
        else:
            self.command.stdout.write(json.dumps(payload, indent=2, default=str))

    def confirm(self, question: str) -> bool:
        """Ask on a terminal; refuse without one unless --noinput was given."""
        if not self.opts.get("interactive", True):  # --noinput
            return True
        if not sys.stdin.isatty():
            raise CommandError(
                "refusing to act without confirmation: stdin is not a terminal; "
                "pass --noinput to run from a script"
            )
        return self.ask_yes_no(question)

    @staticmethod
    def ask_yes_no(question: str) -> bool:
        """Ask on the terminal; only ``y``/``yes`` is yes, and end of input (Ctrl-D) is no."""
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            sys.stdout.write("\n")  # the prompt's line was left open
            return False
        return answer.strip().lower() in {"y", "yes"}


#: Actions that take several aliases (``--database=a,b`` or ``all``): one document each.
SEVERAL_ALIASES: Final = frozenset({"status", "health", "monitor"})


def resolve_aliases(spec: str) -> list[str]:
    """``default``, ``a,b`` or ``all`` (every alias of a vendor dbconnmgr reads) -> aliases.

    Raises:
        CommandError: an empty name (``a,,b``).
    """
    if spec.strip() == "all":
        from dbconnmgr.health import readable_aliases

        return readable_aliases()  # an unknown ENGINE included: the action says so
    names = [name.strip() for name in spec.split(",")]
    if any(not name for name in names):
        raise CommandError(f"--database: empty alias in {spec!r}")
    return list(dict.fromkeys(names))


def worst_exit_code(codes: list[int]) -> int:
    """The worst of several health exit codes (critical 2 > unknown 3 > warning 1 > ok 0)."""
    from dbconnmgr.core.health import Severity

    return int(max((Severity(code) for code in codes), key=lambda s: s.rank, default=0))


def reader_left() -> None:
    """The reader of stdout went away (``| head``): send what is left to /dev/null.

    Nothing more can reach the reader, and the interpreter's last flush at exit must not
    fail either: it would print "Exception ignored ... BrokenPipeError" and exit 120.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def whole_number(minimum: int = 0, maximum: int = 10**9) -> Callable[[str], int]:
    """An argparse type: a whole number in ``[minimum, maximum]``, ASCII digits only.

    ``int()`` alone would take ``1_000``, ``+5`` and other scripts' digits; an upper bound
    keeps a value that parses from crashing later (a timedelta, a SQL interval).
    """

    def parse(value: str) -> int:
        text = value.strip()
        if not _WHOLE.fullmatch(text):
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
        number = int(text)
        if not minimum <= number <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected a number >= {minimum} and <= {maximum}, got {value}"
            )
        return number

    return parse


def finite_number(
    low: float = 0, high: float = 1e9, *, above: bool = False, what: str = "a number"
) -> Callable[[str], float]:
    """An argparse type: a finite number >= ``low`` (> ``low`` with ``above``), <= ``high``."""
    bounds = f"{'>' if above else '>='} {low:g} and <= {high:g}"

    def parse(value: str) -> float:
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
        number = float(text)
        in_range = (number > low if above else number >= low) and number <= high
        if not (math.isfinite(number) and in_range):
            raise argparse.ArgumentTypeError(f"expected {what} {bounds}, got {value}")
        return number

    return parse


_WHOLE = re.compile(r"-?[0-9]+", re.ASCII)
# ASCII only: float() and int() also take "1_000", other scripts' digits and spaces.
_DECIMAL = re.compile(
    r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?inf(?:inity)?|nan",
    re.ASCII | re.IGNORECASE,
)

#: Ten years in seconds: the longest wait or age an option takes (a SQL interval, a sleep).
MAX_SECONDS: Final = 10 * 366 * 24 * 3600
#: The most rows, samples or slots an option takes.
MAX_COUNT: Final = 1_000_000_000

#: argparse type: a whole number >= 1 (counts of samples).
positive_int = whole_number(1, MAX_COUNT)
#: argparse type: a finite number of seconds >= 0.
non_negative_seconds = finite_number(0, MAX_SECONDS, what="a number of seconds")


#: Every action's name, in the order ``--help`` lists them, and where its class is
#: (module under ``dbconnmgr.cli``, class name). Naming them here keeps a command line from
#: importing every action's module to find one: ``--action=status`` imports status's only.
ACTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "status": ("status", "StatusAction"),
    "health": ("health", "HealthAction"),
    "monitor": ("monitor", "MonitorAction"),
    "peak": ("peak", "PeakAction"),
    "rollup": ("peak", "RollupAction"),
    "close-idle": ("terminate", "CloseIdleAction"),
    "force-close": ("terminate", "ForceCloseAction"),
    "cancel": ("terminate", "CancelAction"),
    "budget": ("budget", "BudgetAction"),
}


class Registry(Mapping[str, "type[Action[Any]]"]):
    """Every action by name; an action's module is imported when its class is looked up.

    Names (iteration, ``in``, ``len``) cost no import; ``registry()["status"]`` imports
    :mod:`dbconnmgr.cli.status` alone, ``registry().values()`` every action's module (the
    parser of ``--help`` and of ``call_command()``, which list every option).
    """

    def __getitem__(self, name: str) -> type[Action[Any]]:
        module, attribute = ACTIONS[name]
        cls: type[Action[Any]] = getattr(
            importlib.import_module(f"dbconnmgr.cli.{module}"), attribute
        )
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(ACTIONS)

    def __len__(self) -> int:
        return len(ACTIONS)

    def __contains__(self, name: object) -> bool:  # no import to answer it
        return name in ACTIONS


_REGISTRY: Final = Registry()


def registry() -> Registry:
    """Every action by name, in the order ``--help`` lists them (imported on look-up)."""
    return _REGISTRY
