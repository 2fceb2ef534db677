"""The settings step of each engine, and the typed reads they share.

Each engine listed in :data:`dbconnmgr.backends.registry.ENGINES` may hold a ``settings``
module (``backends/postgresql/settings.py``) that defines ``SETTINGS``, an
:class:`EngineSettings`: the URL schemes it answers for (its ENGINE values are the
registry's), how it fixes a parsed URL, how it configures a ``DATABASES`` entry, and
the facts the system checks of ``DATABASES`` need. :func:`engine_settings` finds them by
ENGINE or URL scheme; a new engine adds its ``settings`` module and nothing here.

Import-light on purpose: :mod:`dbconnmgr.database_settings` uses this module from a
project's ``settings.py``, before Django is set up. Neither this module nor an engine's
``settings`` module may import ``django.db`` or a database driver at import time.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "MAX_POOL_TIMEOUT",
    "MAX_WHOLE",
    "EngineSettings",
    "Sources",
    "all_engine_settings",
    "engine_settings",
    "first",
    "parse_age",
    "parse_bool",
    "parse_seconds",
    "parse_whole",
    "set_option",
]

# One parser per kind, for keyword arguments, environment variables and URL values alike:
# a string must be spelled in ASCII digits (``int()`` alone takes "1_000", "+5" and other
# scripts' digits); a keyword must be of the type (a bool is not a number).
_DIGITS: Final = re.compile(r"-?[0-9]+", re.ASCII)
_DECIMAL: Final = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
_TRUE: Final = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE: Final = frozenset({"0", "false", "f", "no", "n", "off", ""})
_NONE: Final = frozenset({"none", "null"})
#: The largest whole number a setting takes (PostgreSQL's integer settings stop there).
MAX_WHOLE: Final = 2**31 - 1
#: The longest pool timeout, in seconds (a day).
MAX_POOL_TIMEOUT: Final = 86400.0
#: Seconds a connection attempt may take, for every engine that takes ``connect_timeout``.
DEFAULT_CONNECT_TIMEOUT: Final = 5


def parse_bool(name: str, value: Any) -> bool:
    """``value`` as a bool (``true``/``1``/``on``...), else ImproperlyConfigured naming ``name``."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower() if isinstance(value, str) else None
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def parse_whole(name: str, value: Any, *, minimum: int = 1, maximum: int = MAX_WHOLE) -> int:
    """``value`` as a whole number in [minimum, maximum] (ASCII digits when a string)."""
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}")
    if not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum} and <= {maximum}, got {number}")
    return number


def parse_seconds(name: str, value: Any, *, maximum: float = MAX_POOL_TIMEOUT) -> float:
    """``value`` as a number of seconds in (0, maximum]."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value.strip())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {value!r}")
    if not 0 < number <= maximum:  # NaN fails too
        raise ImproperlyConfigured(
            f"{name} must be a number of seconds > 0 and <= {maximum:g}, got {value!r}"
        )
    return number


def parse_age(name: str, value: Any) -> int | None:
    """A connection age: whole seconds >= 0, or None (forever) for ``none``/``null``."""
    if isinstance(value, str) and value.strip().lower() in _NONE:
        return None
    return parse_whole(name, value, minimum=0)


def first(*values: Any) -> Any:
    """The first value that is not None."""
    for value in values:
        if value is not None:
            return value
    return None


def set_option(options: dict[str, Any], key: str, chosen: Any, fallback: Any) -> None:
    """Set ``key`` to ``chosen`` when given, else keep the URL's value, else ``fallback``."""
    if chosen is not None:
        options[key] = chosen
    else:
        options.setdefault(key, fallback)


class Sources:
    """The two upper levels of the precedence: a keyword argument, else its variable.

    The keyword wins when it is not None; both go through the same parser, and an error
    names the one that was read. An empty variable counts as unset. The URL's value and
    the default are the caller's lower levels (:func:`first`, :func:`set_option`).

    Args:
        environment: the variables to read (``os.environ`` or a test's dict).
        keywords: ``database_config``'s keyword arguments by name (None: not given).
    """

    def __init__(
        self, environment: Mapping[str, str], keywords: Mapping[str, Any] | None = None
    ) -> None:
        self.environment = environment
        self.keywords = dict(keywords or {})

    def text(self, name: str) -> str | None:
        """The variable ``name``, stripped; None when unset or empty."""
        value = self.environment.get(name, "").strip()
        return value or None

    def pick(self, var: str, keyword: str | None = None) -> tuple[str, Any]:
        """(name read, raw value): the keyword when given, else the variable."""
        if keyword is not None and self.keywords.get(keyword) is not None:
            return keyword, self.keywords[keyword]
        return var, self.text(var)

    def boolean(self, var: str, keyword: str | None = None) -> bool | None:
        """A bool, or None when neither is given."""
        name, value = self.pick(var, keyword)
        return None if value is None else parse_bool(name, value)

    def whole(
        self, var: str, keyword: str | None = None, *, minimum: int = 1, maximum: int = MAX_WHOLE
    ) -> int | None:
        """A whole number in [minimum, maximum], or None when neither is given."""
        name, value = self.pick(var, keyword)
        if value is None:
            return None
        return parse_whole(name, value, minimum=minimum, maximum=maximum)

    def age(self, var: str, keyword: str | None = None) -> tuple[bool, int | None]:
        """(given, seconds): ``given`` is False when neither was set; None means forever."""
        name, value = self.pick(var, keyword)
        if value is None:
            return False, None
        return True, parse_age(name, value)


#: ``normalize(options, config)``: fix the engine's ``OPTIONS`` as a URL parser left them.
Normalize = Callable[[dict[str, Any], Mapping[str, Any]], None]
#: ``configure(config, options, sources)``: the engine's part of ``database_config()``.
Configure = Callable[[dict[str, Any], dict[str, Any], Sources], None]


def _nothing_to_normalize(options: dict[str, Any], config: Mapping[str, Any]) -> None:
    return None


def _nothing_to_configure(config: dict[str, Any], options: dict[str, Any], src: Sources) -> None:
    return None


@dataclass(frozen=True)
class EngineSettings:
    """What ``database_config()`` and the checks of ``DATABASES`` know about one engine.

    Attributes:
        vendor: Django's ``connection.vendor`` (``postgresql``, ``mysql``); the engine's
            ``ENGINE`` values come from its registry entry (:attr:`engines`).
        schemes: URL schemes (``postgres``, ``mysql``...) it answers for.
        integer_options: ``OPTIONS`` keys that take whole numbers (a URL gives strings).
        normalize: fixes the engine's ``OPTIONS`` after a URL parse.
        configure: the engine's step of ``database_config()`` (timeouts, options).
        native_pool: Django's ``OPTIONS["pool"]`` works here (psycopg_pool).
        pgbouncer: the engine speaks PostgreSQL's protocol, so it can sit behind PgBouncer.
        known_options: every ``OPTIONS`` key the driver accepts (None: not checked).
        application_name: the driver takes ``OPTIONS["application_name"]`` (check W011).
        connect_timeout: the driver takes ``OPTIONS["connect_timeout"]`` (check W012).
        wait_timeout: the server's default idle timeout, in seconds, after which it closes
            a connection (check W014; None: none).
    """

    vendor: str
    schemes: frozenset[str] = frozenset()
    integer_options: tuple[str, ...] = ("connect_timeout",)
    normalize: Normalize = _nothing_to_normalize
    configure: Configure = _nothing_to_configure
    native_pool: bool = False
    pgbouncer: bool = False
    known_options: Callable[[], frozenset[str]] | None = None
    application_name: bool = False
    connect_timeout: bool = False
    wait_timeout: int | None = None

    @property
    def engines(self) -> frozenset[str]:
        """The ``ENGINE`` values this declaration answers for (the registry's entry)."""
        from dbconnmgr.backends.registry import by_vendor

        listed = by_vendor(self.vendor)
        return listed.engines if listed is not None else frozenset()


def _declarations() -> Iterator[EngineSettings]:
    from dbconnmgr.backends.registry import ENGINES

    for listed in ENGINES:
        name = f"{listed.package}.settings"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a broken settings module must not pass silently
                raise
            continue
        declared = getattr(module, "SETTINGS", None)
        if isinstance(declared, EngineSettings):
            yield declared


@cache
def all_engine_settings() -> tuple[EngineSettings, ...]:
    """Every engine's settings declaration (``backends/<engine>/settings.py``)."""
    return tuple(sorted(_declarations(), key=lambda s: s.vendor))


@cache
def _by_key() -> dict[str, EngineSettings]:
    found: dict[str, EngineSettings] = {}
    for declared in all_engine_settings():
        for key in (*declared.engines, *declared.schemes):
            found.setdefault(key, declared)
    return found


def engine_settings(engine_or_scheme: object) -> EngineSettings | None:
    """The declaration for an ``ENGINE`` value or a URL scheme (None: not ours)."""
    if not isinstance(engine_or_scheme, str):
        return None
    return _by_key().get(engine_or_scheme)
