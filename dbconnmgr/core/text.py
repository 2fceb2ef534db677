"""Text that came from a server or a client, made safe to show or log as one line.

Application names, role, database and host names, query text and client addresses are
chosen by whoever connects. Shown on a terminal they must not move the cursor, clear the
screen, plant a hyperlink (OSC 8) or start a new line; logged, they must not forge a line.
:func:`escape_controls` writes every character that would do so as a visible escape
(``\\x1b``, ``\\n``, ``\\u202e``) and leaves everything else, brackets and backslashes
included, exactly as it was. The rich surfaces use it through
:func:`dbconnmgr.render.literal`; the audit lines through :func:`log_arg`.
"""

from __future__ import annotations

import unicodedata
from typing import Final, TypeVar

T = TypeVar("T")

_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_of(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _is_unsafe(char: str) -> bool:
    # Cc: C0, DEL and C1 controls (ESC, BEL, CSI 0x9b...). Zl/Zp: U+2028/U+2029 end a line
    # for some readers. The bidirectional overrides and isolates reorder what follows them,
    # so a name could display as another one.
    category = unicodedata.category(char)
    return category in {"Cc", "Zl", "Zp"} or unicodedata.bidirectional(char) in _BIDI_CONTROLS


_BIDI_CONTROLS: Final = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})

#: str.translate table of every unsafe character below U+10000 (the bidi controls, C0/C1,
#: line separators all are).
_TABLE: Final = {
    code: _escape_of(chr(code))
    for code in (*range(0x00, 0xA0), *range(0x2000, 0x2070), 0x061C, 0x200E, 0x200F)
    # U+061C, U+200E, U+200F: the invisible direction marks
    if _is_unsafe(chr(code)) or code in (0x061C, 0x200E, 0x200F)
}


def escape_controls(text: str) -> str:
    """``text`` with control, line-separator and bidi-control characters escaped.

    ``"a\\x1b[2Jb"`` becomes ``"a\\\\x1b[2Jb"`` (a backslash, then ``x1b``): the text says
    what the name holds, and no terminal acts on it. A name without such characters is
    returned unchanged (rich markup such as ``[bold]`` is not touched here: the renderers
    never parse data as markup).
    """
    return text.translate(_TABLE)


def log_arg(value: T) -> T | str:
    """An argument of a log line: a str with :func:`escape_controls` applied, else as is.

    ``logger.info("user=%s", log_arg(name))`` stays one line whatever ``name`` holds.
    """
    return escape_controls(value) if isinstance(value, str) else value
