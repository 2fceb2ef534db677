"""Code labels: which view, command, task or block sent a statement. Pure: no I/O.

A Django process with attribution on puts a sqlcommenter-style comment in front of every
statement (``dbconnmgr.attribution``)::

    /*dbconnmgr_code='view%3Ashop.views.export',dbconnmgr_monitor='bulk'*/ SELECT ...

``dbconnmgr_code`` is the code that sent it (``view:<route or dotted path>``,
``command:<name>``, ``task:<name>``); ``dbconnmgr_monitor`` the innermost
``connection_monitor`` block inside it. The server keeps the text: an idle PostgreSQL
session's ``pg_stat_activity.query`` is its last statement, so idle sessions are
attributed too. The backends' row builders read it back with :func:`code_of`, into
``Connection.code``.

Labels are made safe once, where they are made (:func:`clean_label`), and again where
they are read (any client can write such a comment): no control characters (newlines,
escape sequences), at most :data:`MAX_LABEL_LENGTH` characters; in the comment the value
is URL-encoded, so it holds neither a quote nor ``*/`` and cannot close the comment.
Markup (``<``, ``[bold]``) is left as text: the page escapes it, the terminal renders it
literally, Prometheus' exposition escapes label values.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import quote, unquote

__all__ = [
    "CODE_COMMENT_KEY",
    "CODE_KINDS",
    "MAX_LABEL_LENGTH",
    "MONITOR_COMMENT_KEY",
    "OTHER",
    "CodeKind",
    "clean_label",
    "code_comment",
    "code_of",
    "codes_of",
    "describe_code",
    "make_code",
    "monitor_label_of",
    "split_code",
    "top_codes",
]

#: The comment key of the code that sent a statement.
CODE_COMMENT_KEY = "dbconnmgr_code"
#: The comment key of the innermost ``connection_monitor`` block.
MONITOR_COMMENT_KEY = "dbconnmgr_monitor"
#: Characters a label keeps (a route or dotted path is far shorter; the cap bounds what a
#: hostile or runaway label costs every statement and every table).
MAX_LABEL_LENGTH = 120
#: The bucket of every code beyond the top N (``/metrics``, the samples).
OTHER = "other"

CodeKind = Literal["view", "command", "task", "block"]
#: The kinds of code, as the label's prefix names them.
CODE_KINDS: tuple[CodeKind, ...] = ("view", "command", "task", "block")

_PREFIX = "/*dbconnmgr_"


def clean_label(text: str) -> str:
    """``text`` made safe to show anywhere: control and format characters (newlines, ESC,
    bidi overrides) become spaces, runs of spaces one, at most :data:`MAX_LABEL_LENGTH`
    characters; empty stays empty."""
    if text.isprintable() and len(text) <= MAX_LABEL_LENGTH:
        return text  # the usual case: one C-level check
    chars = (" " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text)
    return " ".join("".join(chars).split())[:MAX_LABEL_LENGTH]


def make_code(kind: CodeKind, name: str) -> str:
    """The code label ``kind:name`` (``view:shop.views.export``), cleaned."""
    return clean_label(f"{kind}:{name}")


def split_code(code: str) -> tuple[str, str]:
    """``view:shop.views.export`` -> (``view``, ``shop.views.export``); a label without a
    known kind -> (``""``, the label)."""
    kind, sep, name = code.partition(":")
    if sep and kind in CODE_KINDS:
        return kind, name
    return "", code


def describe_code(code: str) -> str:
    """``view `shop.views.export```: how findings name a code."""
    kind, name = split_code(code)
    return f"{kind} `{name}`" if kind else f"`{name}`"


def code_comment(code: str | None, monitor: str | None) -> str:
    """The comment put in front of a statement (with its trailing space); ``""`` for none.

    Values are URL-encoded (sqlcommenter's serialisation): neither a quote nor ``*/`` can
    appear in them. Keys in sqlcommenter's order (sorted).
    """
    pairs = []
    if code:
        pairs.append(f"{CODE_COMMENT_KEY}='{quote(code, safe='')}'")
    if monitor:
        pairs.append(f"{MONITOR_COMMENT_KEY}='{quote(monitor, safe='')}'")
    return f"/*{','.join(pairs)}*/ " if pairs else ""


@functools.lru_cache(maxsize=4096)
def _parse(comment: str) -> tuple[str | None, str | None]:
    code = monitor = None
    for pair in comment.split(","):
        key, sep, value = pair.partition("=")
        if not sep or len(value) < 2 or value[0] != "'" or value[-1] != "'":
            continue
        text = clean_label(unquote(value[1:-1]))
        if key == CODE_COMMENT_KEY:
            code = text or None
        elif key == MONITOR_COMMENT_KEY:
            monitor = text or None
    return code, monitor


def _comment_of(query: str) -> str | None:
    end = query.find("*/", 2)
    return query[2:end] if end > 0 else None


def code_of(query: str | None) -> str | None:
    """The code label of a statement's text (``pg_stat_activity.query``), if it has one.

    The code the comment names, else ``block:<label>`` for a ``connection_monitor`` block
    outside any attributed code, else None.
    """
    if not query or not query.startswith(_PREFIX):
        return None
    comment = _comment_of(query)
    if comment is None:
        return None
    code, monitor = _parse(comment)
    if code is None and monitor is not None:
        return make_code("block", monitor)
    return code


def monitor_label_of(query: str | None) -> str | None:
    """The innermost ``connection_monitor`` label of a statement's text, if any."""
    if not query or not query.startswith(_PREFIX):
        return None
    comment = _comment_of(query)
    return None if comment is None else _parse(comment)[1]


def codes_of(queries: Iterable[str | None]) -> list[str | None]:
    """:func:`code_of` of every query: the row builders' column-wise form (most statements
    carry no comment: one C-level ``startswith`` each)."""
    return [code_of(q) if q and q.startswith(_PREFIX) else None for q in queries]


def top_codes(counts: dict[str, int], limit: int) -> dict[str, int]:
    """The ``limit`` largest codes by count, the rest summed as :data:`OTHER`: a bounded
    set of labels for ``/metrics`` and samples."""
    ordered: Sequence[tuple[str, int]] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top = dict(ordered[:limit])
    rest = sum(count for _, count in ordered[limit:])
    if rest:
        top[OTHER] = top.get(OTHER, 0) + rest
    return top
