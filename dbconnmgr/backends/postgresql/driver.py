"""psycopg, as dbconnmgr needs it: what a driver error means, the pid of a connection,
and the settings that bound a statement's time. Imports no driver: a classifier is asked
for every alias (process_stats) before any backend is used."""

from __future__ import annotations

from typing import Any

from dbconnmgr.exceptions import ProblemKind, ServerUnavailable


def time_limit_settings(seconds: float) -> dict[str, int]:
    """PostgreSQL settings (milliseconds) that end any statement after ``seconds``.

    ``lock_timeout`` fires a little earlier than ``statement_timeout``, so that a wait for
    a lock (the usual cause) is named as such in the error.
    """
    ms = max(2, round(seconds * 1000))
    return {"statement_timeout": ms, "lock_timeout": max(1, ms * 9 // 10)}


def time_limited_options(options: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``options`` with ``-c statement_timeout/lock_timeout`` appended to libpq's
    ``options`` (never replacing what is there)."""
    bound = " ".join(f"-c {k}={v}" for k, v in time_limit_settings(seconds).items())
    return {**options, "options": f"{options.get('options') or ''} {bound}".strip()}


def driver_pid(raw: Any) -> int | None:
    """The server pid of a psycopg connection (``info.backend_pid``; None when closed)."""
    pid = getattr(getattr(raw, "info", None), "backend_pid", None)
    return int(pid) if pid else None


# Fragments of libpq / server messages, lower-cased. psycopg 3 gives sqlstate None for
# connection failures, so the text is all there is (wording varies by version).
_PATTERNS: tuple[tuple[str, ProblemKind, str], ...] = (
    ("too many clients", "full", "the server is full (max_connections reached)"),
    ("remaining connection slots are reserved", "reserved",
     "the server is full for ordinary roles: only reserved slots are left"),
    ("too many connections for role", "full", "the role's connection limit is reached"),
    ("too many connections for database", "full", "the database's connection limit is reached"),
    # Setup: the alias's configuration or the role's privileges (UNKNOWN, never CRITICAL).
    ("permission denied for database", "setup",
     "the role lacks the CONNECT privilege on the database"),
    ("is not permitted to log in", "setup", "the role may not log in (NOLOGIN)"),
    ("invalid command-line argument", "setup", "bad OPTIONS['options'] for the server"),
    ("unrecognized configuration parameter", "setup", "bad OPTIONS['options'] for the server"),
    ("invalid value for parameter", "setup", "bad OPTIONS['options'] for the server"),
    ("invalid sslmode value", "setup", "bad OPTIONS['sslmode']"),
    ("invalid connection option", "setup", "unknown connection option in OPTIONS"),
    ("invalid dsn", "setup", "invalid connection settings"),
    ("invalid integer value", "setup", "invalid connection settings"),
    ("password authentication failed", "auth", "authentication failed (wrong user or password)"),
    ("no password supplied", "auth", "authentication failed (no password supplied)"),
    ("pg_hba.conf", "auth", "the server's pg_hba.conf rejects this connection"),
    ("does not exist", "auth", "the role or database does not exist"),
    ("timeout expired", "timeout", "timed out connecting to the server"),
    ("connection refused", "unreachable", "cannot connect: connection refused"),
    ("could not translate host name", "unreachable", "cannot connect: unknown host name"),
    ("name or service not known", "unreachable", "cannot connect: unknown host name"),
    ("no route to host", "unreachable", "cannot connect: no route to host"),
    ("network is unreachable", "unreachable", "cannot connect: network is unreachable"),
    ("no such file or directory", "unreachable", "cannot connect: no server on that socket"),
    ("server closed the connection", "unreachable", "the server closed the connection"),
    ("terminating connection", "unreachable", "the server terminated the connection"),
    ("the database system is starting up", "unreachable", "the server is starting up"),
    ("the database system is shutting down", "unreachable", "the server is shutting down"),
    ("the connection is closed", "unreachable", "the connection to the server was lost"),
    ("consuming input failed", "unreachable", "the connection to the server was lost"),
    ("canceling statement due to lock timeout", "other",
     "another session holds a lock the read needs (lock_timeout reached)"),
    ("canceling statement due to statement timeout", "other",
     "the read took longer than its statement_timeout (a lock or an overloaded server?)"),
)  # fmt: skip

_POOL_TIMEOUT_MESSAGE = (
    "the connection pool gave no connection in time (is the server up, with free slots?)"
)


def _pool_timeout_types() -> tuple[type[BaseException], ...]:
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # no pool installed: nothing can raise it
        return ()
    return (PoolTimeout,)


def _caused_by(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    """True when ``exc`` or an exception it was raised from is one of ``types``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and types:
        if isinstance(current, types):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify_error(exc: BaseException, alias: str) -> ServerUnavailable | BaseException:
    """Turn a driver error met while connecting or reading into :class:`ServerUnavailable`.

    Errors that are not about reaching the server (a bug in SQL, say) are returned as they
    are, so they keep their traceback.
    """
    text = str(exc).strip()
    lowered = text.lower()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    # Django wraps psycopg_pool's PoolTimeout in its own OperationalError (as __cause__).
    if _caused_by(exc, _pool_timeout_types()):
        return ServerUnavailable(
            f"database {alias!r}: {_POOL_TIMEOUT_MESSAGE} ({first_line})",
            kind="timeout",
            alias=alias,
            detail=first_line,
        )
    for fragment, kind, message in _PATTERNS:
        if fragment in lowered:
            return ServerUnavailable(
                f"database {alias!r}: {message} ({first_line})",
                kind=kind,
                alias=alias,
                detail=first_line,
            )
    if "connection" in lowered and ("failed" in lowered or "closed" in lowered):
        return ServerUnavailable(
            f"database {alias!r}: cannot connect ({first_line})",
            kind="unreachable",
            alias=alias,
            detail=first_line,
        )
    return exc
