"""The app's own settings: ``settings.DBCONNMGR``, declared once, read at call time.

:data:`SCHEMA` declares every key: its default and the rule a value the project gives
must follow. Rules are data (:class:`Number`, :class:`Boolean`, :class:`Choice`,
:class:`ListOf`, :class:`MappingOf`...), so a key is one declaration. ``manage.py check``
(dbconnmgr.checks.app_settings) runs the same rules and reports each problem with its check
id; the accessors below run them again where a value is read and raise
:class:`~dbconnmgr.exceptions.InvalidSetting`, one line naming the key. Accessors read
``django.conf.settings`` each time so ``override_settings`` and per-process changes are
honoured. Every key is documented in docs/configuration.md.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from dbconnmgr.core.budget import services_from_setting
from dbconnmgr.core.health import DEFAULT_THRESHOLDS, THRESHOLD_KINDS, Severity, threshold_errors
from dbconnmgr.database_settings import PGBOUNCER_POOL_MODES
from dbconnmgr.exceptions import InvalidSetting

__all__ = [
    "DEFAULTS",
    "SCHEMA",
    "Boolean",
    "Choice",
    "ListOf",
    "MappingOf",
    "Number",
    "Parsed",
    "PgBouncerSetting",
    "Problem",
    "Setting",
    "Text",
    "alert_settings",
    "get_setting",
    "pgbouncer_setting",
    "thresholds",
    "unknown_keys",
    "user_settings",
]

#: Upper bounds: large enough for any real use, small enough that no later arithmetic
#: (PostgreSQL intervals, datetime, sleep) overflows.
MAX_SECONDS = 365 * 86400
MAX_TERMINATE_WAIT = 3600
MAX_RETENTION_DAYS = 36500
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Problem:
    """One problem with one setting: ``check_id`` ``dbconnmgr.E1xx`` (error) or ``W1xx``."""

    check_id: str
    message: str
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        """Errors refuse the value; warnings (``W``) only advise."""
        return ".E" in self.check_id


#: A rule: ``rule(name, value)`` -> the problems of ``value``, shown as ``name``
#: (``DBCONNMGR['IDLE_TIMEOUT']``). The classes below are rules; so is any such function.
Rule = Callable[[str, Any], list[Problem]]


def unknown_keys(
    value: Mapping[str, Any], known: list[str], where: str, check_id: str
) -> list[Problem]:
    """One problem per key of ``value`` not in ``known``, with a close-match hint."""
    problems = []
    for key in value:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        problems.append(
            Problem(
                check_id,
                f"Unknown key {key!r} in {where}.",
                hint=f"{hint}Known keys: {', '.join(sorted(known))}.",
            )
        )
    return problems


@dataclass(frozen=True)
class Number:
    """A finite number in [low, high] (``above``: low excluded), in ``unit``."""

    check_id: str
    low: float
    high: float
    above: bool = False
    whole: bool = False
    none_ok: bool = False
    unit: str = "a number"

    def __call__(self, name: str, value: Any) -> list[Problem]:
        if value is None and self.none_ok:
            return []
        ok = (
            not isinstance(value, bool)
            and isinstance(value, int | float)
            and math.isfinite(value)
            and (value > self.low if self.above else value >= self.low)
            and value <= self.high
            and (not self.whole or value == int(value))
        )
        if ok:
            return []
        what = "a whole number" if self.whole else self.unit
        bounds = f"{'above' if self.above else 'from'} {self.low:g} to {self.high:g}"
        extra = " or None" if self.none_ok else ""
        return [Problem(self.check_id, f"{name} must be {what} {bounds}{extra}, got {value!r}.")]


def Seconds(check_id: str, *, high: float = MAX_SECONDS, above: bool = False) -> Number:
    """A number of seconds from 0 (``above``: more than 0) to ``high``."""
    return Number(check_id, low=0, high=high, above=above, unit="seconds")


@dataclass(frozen=True)
class Boolean:
    """True or False (or None with ``none_ok``)."""

    check_id: str
    none_ok: bool = False

    def __call__(self, name: str, value: Any) -> list[Problem]:
        if isinstance(value, bool) or (value is None and self.none_ok):
            return []
        expected = "True, False or None" if self.none_ok else "True or False"
        return [Problem(self.check_id, f"{name} must be {expected}, got {value!r}.")]


@dataclass(frozen=True)
class Choice:
    """One of ``choices`` (None passes: the key is optional)."""

    check_id: str
    choices: tuple[str, ...]

    def __call__(self, name: str, value: Any) -> list[Problem]:
        if value is None or value in self.choices:
            return []
        listed = ", ".join(self.choices)
        return [Problem(self.check_id, f"{name} must be one of {listed}, got {value!r}.")]


@dataclass(frozen=True)
class Text:
    """A non-empty string described as ``what`` (or None with ``none_ok``)."""

    check_id: str
    what: str
    none_ok: bool = False

    def __call__(self, name: str, value: Any) -> list[Problem]:
        if (value is None and self.none_ok) or (isinstance(value, str) and value):
            return []
        extra = " or None" if self.none_ok else ""
        return [Problem(self.check_id, f"{name} must be {self.what}{extra}, got {value!r}.")]


@dataclass(frozen=True)
class Parsed:
    """What ``parse`` accepts; its ValueError is the message."""

    check_id: str
    parse: Callable[[Any], object]

    def __call__(self, name: str, value: Any) -> list[Problem]:
        try:
            self.parse(value)
        except ValueError as exc:
            return [Problem(self.check_id, f"{name}: {exc}.")]
        return []


def _type_name(value: Any) -> str:
    return type(value).__name__


@dataclass(frozen=True)
class ListOf:
    """A list (or tuple) whose items follow ``item``, and which as a whole follows ``then``.

    ``shown`` is how a value that is not a list appears in the message (never a secret).
    """

    check_id: str
    item: Rule | None = None
    then: Rule | None = None
    what: str = "a list"
    shown: Callable[[Any], str] = repr
    hint: str | None = None
    none_ok: bool = True

    def __call__(self, name: str, value: Any) -> list[Problem]:
        if value is None and self.none_ok:
            return []
        if not isinstance(value, list | tuple):
            message = f"{name} must be {self.what}, got {self.shown(value)}."
            return [Problem(self.check_id, message, hint=self.hint)]
        problems = [p for element in value for p in (self.item(name, element) if self.item else [])]
        return problems + (self.then(name, value) if self.then else [])


@dataclass(frozen=True)
class MappingOf:
    """A dict: its ``keys`` (each with its rule, checked when given; unknown ones refused),
    or, without ``keys``, any key whose value follows ``values``; then ``then`` on the whole.

    ``required``: key -> what it is (``"URL"``), refused when missing or None.
    ``known``: the keys accepted when the rules are elsewhere (``then``).
    """

    check_id: str
    keys: Mapping[str, Rule] | None = None
    values: Rule | None = None
    then: Rule | None = None
    known: tuple[str, ...] = ()
    required: Mapping[str, str] = field(default_factory=dict)
    hint: str | None = None
    none_ok: bool = True

    def __call__(self, name: str, value: Any) -> list[Problem]:
        if value is None and self.none_ok:
            return []
        if not isinstance(value, Mapping):
            message = f"{name} must be a dict, got {_type_name(value)}."
            return [Problem(self.check_id, message, hint=self.hint)]
        problems: list[Problem] = []
        known = [*(self.keys or {}), *self.known]
        if known:
            problems += unknown_keys(value, known, name, self.check_id)
        for key, rule in (self.keys or {}).items():
            if key in self.required and value.get(key) is None:
                message = f"{name} has no {key!r} {self.required[key]}."
                problems.append(Problem(self.check_id, message))
            elif key in value:
                problems += rule(f"{name}[{key!r}]", value[key])
        if self.values is not None:
            for key, entry in value.items():
                problems += self.values(f"{name}[{key!r}]", entry)
        return problems + (self.then(name, value) if self.then else [])


# -- rules of one key each -----------------------------------------------------------------


def _threshold_problems(name: str, value: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for problem in threshold_errors({**DEFAULT_THRESHOLDS, **value}):
        pair = "must be below" in problem or "must be above" in problem
        problems.append(
            Problem(
                "dbconnmgr.E104" if pair else "dbconnmgr.E103",
                f"{name}: {problem}.",
                hint="Each warning threshold must be reached before its critical one."
                if pair
                else "See docs/health.md for each threshold's unit.",
            )
        )
    return problems


def _severity(value: Any) -> object:
    return Severity.from_label(str(value))


def _token(name: str, token: Any) -> list[Problem]:
    """One HEALTH_TOKENS entry: a string, long enough not to be guessed (never echoed)."""
    if not isinstance(token, str) or not token.strip():
        return [Problem("dbconnmgr.E107", f"{name} holds an empty or non-string token.")]
    if len(token) < 16:
        hint = (
            "Use a long random token: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
        return [Problem("dbconnmgr.W101", f"A {name} token is shorter than 16 characters.", hint)]
    return []


_PGBOUNCER_HINT = (
    'PGBOUNCER = {"default": {"CONSOLE": "postgres://stats@127.0.0.1:6432/pgbouncer", '
    '"SERVER": "postgres://app@db:5432/app", "POOL_MODE": "transaction"}} '
    "(or the console URL alone)"
)


@dataclass(frozen=True)
class PostgresUrl:
    """A ``postgres://`` URL, never echoed (it may hold a password)."""

    check_id: str
    none_ok: bool = False

    def __call__(self, name: str, value: Any) -> list[Problem]:
        if value is None and self.none_ok:
            return []
        if isinstance(value, str) and value.startswith(("postgres://", "postgresql://")):
            return []
        tail = " without the postgres:// scheme." if isinstance(value, str) else "."
        message = f"{name} must be a postgres:// URL, got {_type_name(value)}{tail}"
        return [Problem(self.check_id, message, hint=_PGBOUNCER_HINT)]


_PGBOUNCER_ENTRY = MappingOf(
    "dbconnmgr.E119",
    keys={
        "POOL_MODE": Choice("dbconnmgr.E119", PGBOUNCER_POOL_MODES),
        "CONSOLE": PostgresUrl("dbconnmgr.E119"),
        "SERVER": PostgresUrl("dbconnmgr.E119", none_ok=True),
    },
    required={"CONSOLE": "URL"},
)


def _pgbouncer_entry(name: str, entry: Any) -> list[Problem]:
    """An alias's PgBouncer: the console URL alone, or {"CONSOLE", "SERVER", "POOL_MODE"}."""
    if isinstance(entry, Mapping):
        return _PGBOUNCER_ENTRY(name, entry)
    return PostgresUrl("dbconnmgr.E119")(f"{name}['CONSOLE']", entry)


@dataclass(frozen=True)
class Setting:
    """One ``DBCONNMGR`` key: its default, the rule a given value follows, what it means."""

    key: str
    default: Any
    rule: Rule
    help: str

    def validate(self, value: Any) -> list[Problem]:
        """The problems of ``value`` for this key (empty: valid)."""
        return self.rule(f"DBCONNMGR[{self.key!r}]", value)


_ALERT_HANDLERS_HINT = "A list of dotted paths or {'HANDLER': path, 'OPTIONS': {...}} dicts."
_E = "dbconnmgr.E"

#: Every key of ``settings.DBCONNMGR``: default, rule, meaning.
SCHEMA: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("STATUS_LIMIT", 10, Number(f"{_E}108", 1, MAX_ROWS, whole=True),
                "Top-N rows in the status breakdowns."),
        Setting("IDLE_TIMEOUT", 300, Seconds(f"{_E}109"),
                "Seconds a plain idle session must be idle before close-idle terminates it."),
        Setting("THRESHOLDS", DEFAULT_THRESHOLDS,
                MappingOf(f"{_E}102", known=tuple(sorted({*DEFAULT_THRESHOLDS, *THRESHOLD_KINDS})),
                          then=_threshold_problems),
                "Health thresholds (docs/health.md): dbconnmgr.core.health.DEFAULT_THRESHOLDS."),
        Setting("MONITOR_SAMPLE_SERVER", True, Boolean(f"{_E}117"),
                "connection_monitor reads the server's client connections around each block."),
        Setting("SERVICES", [],
                ListOf(f"{_E}114", then=Parsed(f"{_E}114", services_from_setting),
                       shown=lambda v: f"{_type_name(v)} {v!r}",
                       hint='SERVICES = ["web=2x4x8", "worker=1x2x4"]'),
                'The processes that connect: "web=4x8" strings or dicts of core.budget.Service.'),
        Setting("BUDGET_HEADROOM", 5, Number(f"{_E}112", 0, MAX_ROWS, whole=True),
                "Slots --action=budget keeps free for people, migrations and one-off jobs."),
        Setting("BUDGET_SAFETY", 0.95, Number(f"{_E}113", 0, 1, above=True),
                "Fraction of the usable slots (after headroom) the services may fill."),
        Setting("ASGI", None, Boolean(f"{_E}118", none_ok=True),
                "True when served over ASGI (None: True when ASGI_APPLICATION is set)."),
        Setting("ALERTS",
                {"HANDLERS": ["dbconnmgr.alerts.LoggingHandler"], "COOLDOWN": 300,
                 "MIN_SEVERITY": "warning", "CACHE": None},
                MappingOf(f"{_E}105", keys={
                    "COOLDOWN": Seconds(f"{_E}105"),
                    "MIN_SEVERITY": Parsed(f"{_E}105", _severity),
                    "CACHE": Text(f"{_E}105", "the alias of a CACHES entry", none_ok=True),
                    "HANDLERS": ListOf(f"{_E}105", hint=_ALERT_HANDLERS_HINT, none_ok=False),
                }),
                "Alert handlers, cooldown (seconds), minimum severity, and the cache alias that "
                "shares the cooldown between processes (None: per process)."),
        Setting("PGBOUNCER", {},
                MappingOf(f"{_E}119", values=_pgbouncer_entry, hint=_PGBOUNCER_HINT),
                "Per alias: PgBouncer's admin console URL, or {'CONSOLE': url, 'SERVER': url} "
                "when the alias itself points at PgBouncer (SERVER: the direct PostgreSQL URL)."),
        Setting("HEALTH_TOKENS", [],
                ListOf(f"{_E}107", item=_token, what="a list of strings", shown=_type_name,
                       hint="HEALTH_TOKENS = [env.str('HEALTH_TOKEN')]"),
                "Bearer tokens accepted by the HTTP health endpoint."),
        Setting("TERMINATE_TIMEOUT", 5, Seconds(f"{_E}110", high=MAX_TERMINATE_WAIT),
                "Seconds close-idle/force-close wait for signalled backends to exit (0: no wait)."),
        Setting("MONITOR_INTERVAL", 5, Seconds(f"{_E}115", high=86400, above=True),
                "Seconds between samples of --action=monitor (--interval overrides it)."),
        Setting("AAS_WINDOW", 60, Seconds(f"{_E}116", high=86400, above=True),
                "Seconds of samples the average active sessions (AAS) is computed over."),
        Setting("RETENTION_DAYS", 30,
                Number(f"{_E}111", 0, MAX_RETENTION_DAYS, above=True, none_ok=True, unit="days"),
                "Recorded samples older than this many days are pruned; None keeps all."),
    )
}  # fmt: skip

#: Defaults of every key of ``settings.DBCONNMGR``.
DEFAULTS: dict[str, Any] = {key: setting.default for key, setting in SCHEMA.items()}


def _refuse(key: str, problems: list[Problem]) -> None:
    errors = [p.message.rstrip(".") for p in problems if p.is_error]
    if errors:
        raise InvalidSetting("; ".join(errors), key=key)


def user_settings() -> dict[str, Any]:
    """The project's ``DBCONNMGR`` dict (empty when unset).

    Raises:
        InvalidSetting: DBCONNMGR is set but is not a dict.
    """
    value = getattr(settings, "DBCONNMGR", None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSetting(f"DBCONNMGR must be a dict, got {type(value).__name__}", key="")
    return dict(value)


def get_setting(name: str) -> Any:
    """One setting: the project's value, validated, else the default.

    Raises:
        KeyError: ``name`` is not a dbconnmgr setting.
        InvalidSetting: the project's value is invalid (the message names the key).
    """
    setting = SCHEMA.get(name)
    if setting is None:
        raise KeyError(f"unknown dbconnmgr setting {name!r}")
    values = user_settings()
    if name not in values:
        return setting.default
    value = values[name]
    _refuse(name, setting.validate(value))
    return value


def thresholds() -> dict[str, Any]:
    """The THRESHOLDS dict: defaults overlaid with the project's keys, validated.

    Raises:
        InvalidSetting: the project's THRESHOLDS are invalid.
    """
    return {**DEFAULT_THRESHOLDS, **(get_setting("THRESHOLDS") or {})}


@dataclass(frozen=True)
class PgBouncerSetting:
    """``DBCONNMGR["PGBOUNCER"][alias]``: the console URL, the direct server URL and the
    pool_mode the alias's settings were made for (system check dbconnmgr.E018)."""

    console: str
    server: str | None
    pool_mode: str | None = None


def pgbouncer_setting(alias: str) -> PgBouncerSetting | None:
    """The PgBouncer in front of ``alias`` (None when none is configured).

    Raises:
        InvalidSetting: ``PGBOUNCER`` is malformed.
    """
    entry = (get_setting("PGBOUNCER") or {}).get(alias)
    if entry is None:
        return None
    if isinstance(entry, Mapping):
        return PgBouncerSetting(
            console=entry["CONSOLE"], server=entry.get("SERVER"), pool_mode=entry.get("POOL_MODE")
        )
    return PgBouncerSetting(console=entry, server=None)


def alert_settings() -> dict[str, Any]:
    """The ALERTS dict: defaults overlaid with the project's keys, validated.

    Raises:
        InvalidSetting: the project's ALERTS are malformed (e.g. HANDLERS is a string).
    """
    return {**DEFAULTS["ALERTS"], **(get_setting("ALERTS") or {})}
