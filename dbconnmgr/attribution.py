"""Attribution: every statement carries the code that sent it, and leaks are reported.

Turned on by ``DBCONNMGR["ATTRIBUTION"] = True`` (off by default): from then on every
statement of the process starts with ``/*dbconnmgr_code='<kind>%3A<name>'*/`` naming

- the view, for requests through :class:`AttributionMiddleware` (sync and async): its
  dotted path (``view:shop.views.export``), resolved before the view runs;
- the management command (``command:db_connections``), however it is run;
- the Celery task (``task:shop.tasks.send_mail``), when Celery is installed;
- ``connection_monitor`` blocks nest inside (``dbconnmgr_monitor='bulk'`` in the same
  comment), and a block outside any of these is ``block:<label>``.

Readers (status, health, the admin page, ``/metrics``) read the label back from each
session's statement text into ``Connection.code`` (:mod:`dbconnmgr.core.attribution`).

Leak detection (``DBCONNMGR["LEAK_THRESHOLD"]`` seconds, None: off): a connection used
by one request, task or ``connection_monitor`` block for longer than the threshold, or a
transaction open longer, is logged once on ``dbconnmgr.leaks`` with the stack of the
statement that took it and the code label, and counted in the process's figures
(:func:`dbconnmgr.process_stats.collect`). A request or task that ends with its
transaction still open is logged at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sysconfig
import threading
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from dbconnmgr.core.attribution import CodeKind, clean_label, code_comment, make_code

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.http import HttpRequest, HttpResponseBase

__all__ = [
    "AttributionMiddleware",
    "attributed",
    "current_code",
    "install",
    "is_installed",
]

logger = logging.getLogger("dbconnmgr.leaks")

#: Frames kept of the stack where a connection or transaction was taken.
STACK_LIMIT = 16


class Hold:
    """A connection or transaction one scope holds: since when, and where it was taken."""

    __slots__ = ("alias", "kind", "logged", "since", "stack")

    def __init__(self, alias: str, kind: str, stack: traceback.StackSummary) -> None:
        self.alias = alias
        self.kind = kind  # "connection" or "transaction"
        self.since = time.monotonic()
        self.stack = stack
        self.logged = False


class Scope:
    """One request, task, command or block: its code label, and what it holds."""

    __slots__ = ("__weakref__", "code", "holds", "leak_threshold", "lock", "name")

    def __init__(
        self, code: str | None, leak_threshold: float | None, name: str | None = None
    ) -> None:
        self.code = code
        self.leak_threshold = leak_threshold
        #: How leak reports name it (the code; a block's label with it).
        self.name = name
        self.holds: dict[tuple[str, str], Hold] = {}
        self.lock = threading.Lock()

    def note(self, db: BaseDatabaseWrapper) -> None:
        """A statement ran on ``db`` in this scope: start the holds it takes, end the
        transaction hold it left (called only with leak detection on)."""
        alias = db.alias
        # The attributes, not get_autocommit(): the statement is on its way, connected.
        in_transaction = db.in_atomic_block or not db.autocommit
        holds = self.holds
        if (alias, "connection") in holds and (in_transaction == ((alias, "transaction") in holds)):
            return
        with self.lock:
            if (alias, "connection") not in holds:
                holds[(alias, "connection")] = Hold(alias, "connection", _stack())
            if in_transaction and (alias, "transaction") not in holds:
                holds[(alias, "transaction")] = Hold(alias, "transaction", _stack())
            elif not in_transaction:
                holds.pop((alias, "transaction"), None)

    def overdue(self, now: float) -> list[Hold]:
        """The holds past the threshold not logged yet (marked logged). A transaction held
        too long is reported instead of its connection: one line per stuck alias."""
        threshold = self.leak_threshold
        if threshold is None:
            return []
        found = []
        with self.lock:
            for hold in self.holds.values():
                if not hold.logged and now - hold.since > threshold:
                    hold.logged = True
                    found.append(hold)
            transactions = {h.alias for h in found if h.kind == "transaction"}
            connections_too = {
                h.alias for h in self.holds.values() if h.kind == "connection" and h.logged
            }
            for alias in transactions & connections_too:
                self.holds[(alias, "connection")].logged = True
        return [h for h in found if h.kind == "transaction" or h.alias not in transactions]


_LIBRARY_PATHS = tuple(
    {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def _stack() -> traceback.StackSummary:
    # The project's own frames: the library's (Django's handlers, dbconnmgr, the standard
    # library) are left out, so the line that sent the statement is the last one shown.
    frames = traceback.extract_stack(limit=STACK_LIMIT * 4)
    own = [
        f
        for f in frames
        if not f.filename.startswith(_LIBRARY_PATHS)
        and "/dbconnmgr/" not in f.filename.replace("\\", "/")
    ]
    return traceback.StackSummary.from_list((own or frames)[-STACK_LIMIT:])


# The scope of the current thread/task; None outside every request, task and command.
_scope: ContextVar[Scope | None] = ContextVar("dbconnmgr_attribution", default=None)
# Scopes with leak detection on and still open: the watchdog's list.
_open: weakref.WeakSet[Scope] = weakref.WeakSet()
_open_lock = threading.Lock()
_installed = False
_watchdog: threading.Thread | None = None


def current_code() -> str | None:
    """The code label of the statements sent from here now, if any."""
    scope = _scope.get()
    return None if scope is None else scope.code


def current_scope() -> Scope | None:
    """The open scope of this thread or task (the execute wrapper reads it)."""
    return _scope.get()


def is_installed() -> bool:
    """Whether attribution is on in this process."""
    return _installed


def _leak_threshold() -> float | None:
    from dbconnmgr.app_settings import get_setting

    value = get_setting("LEAK_THRESHOLD")
    return None if value is None else float(value)


@contextmanager
def attributed(kind: CodeKind, name: str) -> Iterator[Scope]:
    """Label every statement sent inside with ``kind:name`` (a request, task, command).

    Used by the middleware, the command and the Celery hooks; usable for any unit of work
    of your own (``with attributed("task", "nightly_export"): ...``). Nested scopes
    replace the outer label while they are open. Leaks are checked on exit.
    """
    scope = Scope(make_code(kind, name), _leak_threshold() if kind != "command" else None)
    token = _scope.set(scope)
    if scope.leak_threshold is not None:
        _watch(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        if scope.leak_threshold is not None:
            _end(scope)


def _watch(scope: Scope) -> None:
    global _watchdog
    with _open_lock:
        _open.add(scope)
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(
                target=_watch_loop, name="dbconnmgr-leak-detection", daemon=True
            )
            _watchdog.start()


def _watch_loop() -> None:
    """Log every hold past its threshold while its scope is still open (like HikariCP's
    leak detection: the stuck request is named while it is stuck)."""
    while True:
        with _open_lock:
            scopes = list(_open)
        thresholds = [s.leak_threshold for s in scopes if s.leak_threshold is not None]
        now = time.monotonic()
        for scope in scopes:
            for hold in scope.overdue(now):
                _report(scope, hold, now, ended=False)
        time.sleep(min(1.0, max(0.05, min(thresholds, default=1.0) / 4)))


def _end(scope: Scope) -> None:
    """The scope ended: report what was held too long, and a transaction left open."""
    with _open_lock:
        _open.discard(scope)
    now = time.monotonic()
    for hold in scope.overdue(now):
        _report(scope, hold, now, ended=True)
    from django.db import connections

    for alias, kind in list(scope.holds):
        if kind != "connection":
            continue
        db = connections[alias]  # this thread's: an async request's is never connected here
        if db.connection is not None and (db.in_atomic_block or not db.autocommit):
            open_transaction = scope.holds.get((alias, "transaction"))
            if open_transaction is not None and not open_transaction.logged:
                open_transaction.logged = True
                _report(scope, open_transaction, now, ended=True, left_open=True)


def _report(scope: Scope, hold: Hold, now: float, *, ended: bool, left_open: bool = False) -> None:
    from dbconnmgr.process_stats import count_leak

    count_leak(hold.alias)
    held = now - hold.since
    if left_open:
        what = f"left a transaction open on {hold.alias!r} after {held:.1f} s"
    else:
        state = "held" if ended else "has held"
        what = f"{state} a {hold.kind} on {hold.alias!r} for {held:.1f} s"
    logger.warning(
        "%s %s (threshold %s s); taken at:\n%s",
        scope.name or scope.code,
        what,
        f"{scope.leak_threshold:g}",
        "".join(hold.stack.format()).rstrip(),
        extra={"dbconnmgr_code": scope.code, "dbconnmgr_alias": hold.alias},
    )


def open_block_scope(label: str) -> tuple[Token[Scope | None], Scope] | None:
    """Watch a ``connection_monitor`` block for leaks (None: ``LEAK_THRESHOLD`` is off).

    The block keeps the code of the request or task it is in (its statements still carry
    it); its reports name both.
    """
    threshold = _leak_threshold()
    if threshold is None:
        return None
    outer = _scope.get()
    code = outer.code if outer is not None else None
    block = make_code("block", label)
    scope = Scope(code, threshold, name=f"{code} {block}" if code else block)
    token = _scope.set(scope)
    _watch(scope)
    return token, scope


def close_block_scope(opened: tuple[Token[Scope | None], Scope]) -> None:
    """The block of :func:`open_block_scope` ended: report what it held too long."""
    token, scope = opened
    # Left in another context than entered (the block's caller's bug): nothing to reset.
    with contextlib.suppress(ValueError):
        _scope.reset(token)
    _end(scope)


@functools.lru_cache(maxsize=1024)
def comment_for(code: str | None, monitor: str | None) -> tuple[str, str]:
    """The statement comment for a code and monitor label, and its ``%``-doubled form
    (the drivers interpolate ``%s`` when there are parameters)."""
    comment = code_comment(code, clean_label(monitor) if monitor else None)
    return comment, comment.replace("%", "%%")


# ---------------------------------------------------------------- the request path


def view_label(view_func: Callable[..., Any]) -> str:
    """The dotted path of a view function or class-based view."""
    target = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None) or view_func
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return f"{module}.{name}" if name else module


class AttributionMiddleware:
    """Labels the statements of each request with its view (sync and async).

    Put it first in ``MIDDLEWARE``; it needs ``DBCONNMGR["ATTRIBUTION"] = True`` (which
    also labels commands and tasks). The label is set when the URL is resolved
    (``process_view``): statements before that (an earlier middleware's) carry none.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        with attributed("view", "(unresolved)") as scope:
            request._dbconnmgr_scope = scope  # type: ignore[attr-defined]
            return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        # The scope object is shared, not copied: sync_to_async runs the view's ORM calls
        # in a copy of this context, and they see the label set by process_view.
        with attributed("view", "(unresolved)") as scope:
            request._dbconnmgr_scope = scope  # type: ignore[attr-defined]
            response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
            return response

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: Any,
    ) -> None:
        """Name the scope after the resolved view."""
        scope: Scope | None = getattr(request, "_dbconnmgr_scope", None)
        if scope is not None:
            scope.code = make_code("view", view_label(view_func))


# ---------------------------------------------------------------- commands and tasks


def _command_execute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute(self: Any, *args: Any, **options: Any) -> Any:
        name = type(self).__module__.rsplit(".", 1)[-1]
        with attributed("command", name):
            return original(self, *args, **options)

    return execute


def _connect_celery() -> bool:
    """Label Celery tasks (``task_prerun`` / ``task_postrun``), when Celery is installed."""
    try:
        from celery import signals
    except ImportError:
        return False
    tokens: dict[str, Any] = {}

    def prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
        scope = Scope(make_code("task", getattr(task, "name", "?")), _leak_threshold())
        tokens[task_id or ""] = (_scope.set(scope), scope)
        if scope.leak_threshold is not None:
            _watch(scope)

    def postrun(task_id: str | None = None, **kwargs: Any) -> None:
        entry = tokens.pop(task_id or "", None)
        if entry is None:
            return
        token, scope = entry
        try:
            _scope.reset(token)
        except ValueError:  # reset in another context than set: just clear it
            _scope.set(None)
        if scope.leak_threshold is not None:
            _end(scope)

    signals.task_prerun.connect(prerun, weak=False, dispatch_uid="dbconnmgr.attribution")
    signals.task_postrun.connect(postrun, weak=False, dispatch_uid="dbconnmgr.attribution")
    return True


_install_lock = threading.Lock()


def install() -> None:
    """Turn attribution on in this process (``AppConfig.ready`` does, when
    ``DBCONNMGR["ATTRIBUTION"]`` is True): the statement hook on every connection, the
    command and the Celery task labels."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from dbconnmgr import internals
        from dbconnmgr.block_monitor.tracking import _install_hooks, _install_wrapper

        _install_hooks()
        from django.db import connections

        for alias in connections:
            _install_wrapper(connections[alias])
        internals.wrap_command_execute(_command_execute)
        _connect_celery()
        _installed = True
