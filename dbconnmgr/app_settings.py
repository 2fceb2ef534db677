"""The app's own settings: ``settings.DBCONNMGR``, declared once, read at call time.

:data:`SCHEMA` declares every key: its default and the validator of a value the project
gives. ``manage.py check`` (dbconnmgr.checks.app_settings) runs the same validators and
reports each problem with its check id; the accessors below run them again where a value is
read and raise :class:`~dbconnmgr.exceptions.InvalidSetting`, one line naming the key.
Accessors read ``django.conf.settings`` each time so ``override_settings`` and per-process
changes are honoured. Every key is documented in docs/configuration.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dbconnmgr.core.health import DEFAULT_THRESHOLDS, THRESHOLD_KINDS, Severity, threshold_errors
from dbconnmgr.exceptions import InvalidSetting

__all__ = [
    "DEFAULTS",
    "SCHEMA",
    "PgBouncerSetting",
    "Problem",
    "Setting",
    "alert_settings",
    "get_setting",
    "pgbouncer_setting",
    "thresholds",
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


Validator = Callable[[Any], list[Problem]]


@dataclass(frozen=True)
class Setting:
    """One ``DBCONNMGR`` key: its default, what it means, how a given value is checked."""

    default: Any
    validate: Validator
    help: str


def _name(key: str) -> str:
    return f"DBCONNMGR[{key!r}]"


def _number(
    name: str,
    check_id: str,
    *,
    low: float,
    high: float,
    above: bool = False,
    whole: bool = False,
    none_ok: bool = False,
    unit: str = "a number",
) -> Validator:
    """A validator of a finite number in [low, high] (``above``: low excluded); ``name``
    is the key as shown (``DBCONNMGR['IDLE_TIMEOUT']``)."""
    what = "a whole number" if whole else unit
    bounds = f"{'above' if above else 'from'} {low:g} to {high:g}"
    extra = " or None" if none_ok else ""

    def validate(value: Any) -> list[Problem]:
        if value is None and none_ok:
            return []
        ok = (
            not isinstance(value, bool)
            and isinstance(value, int | float)
            and math.isfinite(value)
            and (value > low if above else value >= low)
            and value <= high
            and (not whole or value == int(value))
        )
        if ok:
            return []
        return [Problem(check_id, f"{name} must be {what} {bounds}{extra}, got {value!r}.")]

    return validate


def _boolean(key: str, check_id: str, *, none_ok: bool = False) -> Validator:
    def validate(value: Any) -> list[Problem]:
        if isinstance(value, bool) or (value is None and none_ok):
            return []
        expected = "True, False or None" if none_ok else "True or False"
        return [Problem(check_id, f"{_name(key)} must be {expected}, got {value!r}.")]

    return validate


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _not_a_list(name: str, check_id: str, shown: str, hint: str) -> list[Problem]:
    return [Problem(check_id, f"{name} must be a list, got {shown}.", hint=hint)]


def unknown_keys(
    value: Mapping[str, Any], known: list[str], where: str, check_id: str
) -> list[Problem]:
    """One problem per key of ``value`` not in ``known``, with a close-match hint."""
    import difflib

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


def _validate_thresholds(value: Any) -> list[Problem]:
    if value is None:  # the default
        return []
    if not isinstance(value, Mapping):
        return [
            Problem(
                "dbconnmgr.E102",
                f"{_name('THRESHOLDS')} must be a dict, got {type(value).__name__}.",
            )
        ]
    known = sorted(set(DEFAULT_THRESHOLDS) | set(THRESHOLD_KINDS))
    problems = unknown_keys(value, known, _name("THRESHOLDS"), "dbconnmgr.E102")
    for problem in threshold_errors({**DEFAULT_THRESHOLDS, **value}):
        pair = "must be below" in problem or "must be above" in problem
        problems.append(
            Problem(
                "dbconnmgr.E104" if pair else "dbconnmgr.E103",
                f"{_name('THRESHOLDS')}: {problem}.",
                hint="Each warning threshold must be reached before its critical one."
                if pair
                else "See docs/health.md for each threshold's unit.",
            )
        )
    return problems


_ALERT_KEYS = ["HANDLERS", "COOLDOWN", "MIN_SEVERITY", "CACHE"]


def _validate_alerts(value: Any) -> list[Problem]:
    """The shape of ALERTS. Whether each handler imports is checked by ``manage.py check``
    (E106) and, at run time, logged per handler by :func:`dbconnmgr.alerts.load_handlers`."""
    if value is None:  # the default
        return []
    if not isinstance(value, Mapping):
        return [
            Problem(
                "dbconnmgr.E105", f"{_name('ALERTS')} must be a dict, got {type(value).__name__}."
            )
        ]
    problems = unknown_keys(value, _ALERT_KEYS, _name("ALERTS"), "dbconnmgr.E105")
    cooldown = value.get("COOLDOWN", 0)
    problems += _number(
        f"{_name('ALERTS')}['COOLDOWN']", "dbconnmgr.E105", low=0, high=MAX_SECONDS, unit="seconds"
    )(cooldown)
    try:
        Severity.from_label(str(value.get("MIN_SEVERITY", "warning")))
    except ValueError as exc:
        problems.append(Problem("dbconnmgr.E105", f"{_name('ALERTS')}['MIN_SEVERITY']: {exc}."))
    cache = value.get("CACHE")
    if cache is not None and (not isinstance(cache, str) or not cache):
        problems.append(
            Problem(
                "dbconnmgr.E105",
                f"{_name('ALERTS')}['CACHE'] must be the alias of a CACHES entry or None, "
                f"got {cache!r}.",
            )
        )
    handlers = value.get("HANDLERS", [])
    if not _is_list(handlers):
        problems += _not_a_list(
            f"{_name('ALERTS')}['HANDLERS']",
            "dbconnmgr.E105",
            repr(handlers),
            "A list of dotted paths or {'HANDLER': path, 'OPTIONS': {...}} dicts.",
        )
    return problems


def _validate_tokens(value: Any) -> list[Problem]:
    if value is None:  # the default
        return []
    if not _is_list(value):
        return [
            Problem(
                "dbconnmgr.E107",
                # the type only: never echo a secret
                f"{_name('HEALTH_TOKENS')} must be a list of strings, got {type(value).__name__}.",
                hint="HEALTH_TOKENS = [env.str('HEALTH_TOKEN')]",
            )
        ]
    problems = []
    for token in value:
        if not isinstance(token, str) or not token.strip():
            problems.append(
                Problem(
                    "dbconnmgr.E107",
                    f"{_name('HEALTH_TOKENS')} holds an empty or non-string token.",
                )
            )
        elif len(token) < 16:
            problems.append(
                Problem(
                    "dbconnmgr.W101",
                    f"A {_name('HEALTH_TOKENS')} token is shorter than 16 characters.",
                    hint="Use a long random token: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))'",
                )
            )
    return problems


def _validate_services(value: Any) -> list[Problem]:
    if value is None:  # the default
        return []
    from dbconnmgr.core.budget import services_from_setting

    if not _is_list(value):
        return _not_a_list(
            _name("SERVICES"),
            "dbconnmgr.E114",
            f"{type(value).__name__} {value!r}",
            'SERVICES = ["web=2x4x8", "worker=1x2x4"]',
        )
    try:
        services_from_setting(value)  # refuses a name given twice too
    except ValueError as exc:
        return [Problem("dbconnmgr.E114", f"{_name('SERVICES')}: {exc}.")]
    return []


_PGBOUNCER_KEYS = ["CONSOLE", "SERVER", "POOL_MODE"]
_POOL_MODES = ("session", "transaction", "statement")
_PGBOUNCER_HINT = (
    'PGBOUNCER = {"default": {"CONSOLE": "postgres://stats@127.0.0.1:6432/pgbouncer", '
    '"SERVER": "postgres://app@db:5432/app", "POOL_MODE": "transaction"}} '
    "(or the console URL alone)"
)


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("postgres://", "postgresql://"))


def _validate_pgbouncer(value: Any) -> list[Problem]:
    """PGBOUNCER: {alias: console URL} or {alias: {"CONSOLE": url, "SERVER": url}}.

    URLs are never echoed (they may hold a password)."""
    if value is None:  # the default
        return []
    where = _name("PGBOUNCER")
    if not isinstance(value, Mapping):
        return [
            Problem(
                "dbconnmgr.E119",
                f"{where} must be a dict, got {type(value).__name__}.",
                hint=_PGBOUNCER_HINT,
            )
        ]
    problems: list[Problem] = []
    for alias, entry in value.items():
        here = f"{where}[{alias!r}]"
        if isinstance(entry, Mapping):
            problems += unknown_keys(entry, _PGBOUNCER_KEYS, here, "dbconnmgr.E119")
            mode = entry.get("POOL_MODE")
            if mode is not None and mode not in _POOL_MODES:
                problems.append(
                    Problem(
                        "dbconnmgr.E119",
                        f"{here}['POOL_MODE'] must be one of {', '.join(_POOL_MODES)}, "
                        f"got {mode!r}.",
                    )
                )
            urls = {key: entry.get(key) for key in ("CONSOLE", "SERVER")}
            if urls["CONSOLE"] is None:
                problems.append(Problem("dbconnmgr.E119", f"{here} has no 'CONSOLE' URL."))
                urls.pop("CONSOLE")
            if urls["SERVER"] is None:
                urls.pop("SERVER")
        else:
            urls = {"CONSOLE": entry}
        for key, url in urls.items():
            if not _is_url(url):
                problems.append(
                    Problem(
                        "dbconnmgr.E119",
                        f"{here}[{key!r}] must be a postgres:// URL, got "
                        f"{type(url).__name__}"
                        + (" without the postgres:// scheme." if isinstance(url, str) else "."),
                        hint=_PGBOUNCER_HINT,
                    )
                )
    return problems


def _seconds(
    key: str, check_id: str, *, high: float = MAX_SECONDS, above: bool = False
) -> Validator:
    return _number(_name(key), check_id, low=0, high=high, above=above, unit="seconds")


#: Every key of ``settings.DBCONNMGR``: default, validator, meaning.
SCHEMA: dict[str, Setting] = {
    "STATUS_LIMIT": Setting(
        10,
        _number(_name("STATUS_LIMIT"), "dbconnmgr.E108", low=1, high=MAX_ROWS, whole=True),
        "Top-N rows in the status breakdowns.",
    ),
    "IDLE_TIMEOUT": Setting(
        300,
        _seconds("IDLE_TIMEOUT", "dbconnmgr.E109"),
        "Seconds a plain idle session must be idle before close-idle terminates it.",
    ),
    "THRESHOLDS": Setting(
        DEFAULT_THRESHOLDS,
        _validate_thresholds,
        "Health thresholds (docs/health.md): dbconnmgr.core.health.DEFAULT_THRESHOLDS.",
    ),
    "MONITOR_SAMPLE_SERVER": Setting(
        True,
        _boolean("MONITOR_SAMPLE_SERVER", "dbconnmgr.E117"),
        "connection_monitor reads the server's client connections around each block.",
    ),
    "SERVICES": Setting(
        [],
        _validate_services,
        'The processes that connect: "web=4x8" strings or dicts of core.budget.Service.',
    ),
    "BUDGET_HEADROOM": Setting(
        5,
        _number(_name("BUDGET_HEADROOM"), "dbconnmgr.E112", low=0, high=MAX_ROWS, whole=True),
        "Slots --action=budget keeps free for people, migrations and one-off jobs.",
    ),
    "BUDGET_SAFETY": Setting(
        0.95,
        _number(_name("BUDGET_SAFETY"), "dbconnmgr.E113", low=0, high=1, above=True),
        "Fraction of the usable slots (after headroom) the services may fill.",
    ),
    "ASGI": Setting(
        None,
        _boolean("ASGI", "dbconnmgr.E118", none_ok=True),
        "True when served over ASGI (None: True when ASGI_APPLICATION is set).",
    ),
    "ALERTS": Setting(
        {
            "HANDLERS": ["dbconnmgr.alerts.LoggingHandler"],
            "COOLDOWN": 300,
            "MIN_SEVERITY": "warning",
            "CACHE": None,
        },
        _validate_alerts,
        "Alert handlers, cooldown (seconds), minimum severity, and the cache alias that "
        "shares the cooldown between processes (None: per process).",
    ),
    "PGBOUNCER": Setting(
        {},
        _validate_pgbouncer,
        "Per alias: PgBouncer's admin console URL, or {'CONSOLE': url, 'SERVER': url} when "
        "the alias itself points at PgBouncer (SERVER: the direct PostgreSQL URL).",
    ),
    "HEALTH_TOKENS": Setting(
        [], _validate_tokens, "Bearer tokens accepted by the HTTP health endpoint."
    ),
    "TERMINATE_TIMEOUT": Setting(
        5,
        _seconds("TERMINATE_TIMEOUT", "dbconnmgr.E110", high=MAX_TERMINATE_WAIT),
        "Seconds close-idle/force-close wait for signalled backends to exit (0: no wait).",
    ),
    "MONITOR_INTERVAL": Setting(
        5,
        _seconds("MONITOR_INTERVAL", "dbconnmgr.E115", high=86400, above=True),
        "Seconds between samples of --action=monitor (--interval overrides it).",
    ),
    "AAS_WINDOW": Setting(
        60,
        _seconds("AAS_WINDOW", "dbconnmgr.E116", high=86400, above=True),
        "Seconds of samples the average active sessions (AAS) is computed over.",
    ),
    "RETENTION_DAYS": Setting(
        30,
        _number(
            _name("RETENTION_DAYS"),
            "dbconnmgr.E111",
            low=0,
            high=MAX_RETENTION_DAYS,
            above=True,
            none_ok=True,
            unit="days",
        ),
        "Recorded samples older than this many days are pruned; None keeps all.",
    ),
}

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
