"""Database load by dimension: the active sessions of a snapshot split by wait class, by
application and by code label. Pure: no I/O.

The seed's average active sessions (AAS) is the mean of the active sessions over time; the
split says what they were doing (running on CPU or waiting, and on what) and who sent them.
A sample carries the split of its snapshot (:class:`LoadSplit`); a chart averages it per
time bucket, which is the AAS of each part.

Wait classes are PostgreSQL's ``wait_event_type`` names, plus ``CPU`` for an active session
that waits on nothing (``wait_event_type`` NULL: running, or in code the server does not
instrument). Other engines map their sessions onto these (MariaDB from its processlist
states: ``dbconnmgr/backends/mysql/waits.py``). Applications and code labels are kept to the
:data:`LOAD_TOP` largest per sample, the rest counted together as :data:`OTHER`, so a
recorded sample and a metrics scrape stay small whatever the names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from dbconnmgr.core.snapshot import Connection, Snapshot

__all__ = [
    "CPU",
    "LOAD_DIMENSIONS",
    "LOAD_TOP",
    "NO_CODE",
    "NO_LABEL",
    "OTHER",
    "WAIT_CLASSES",
    "LoadSplit",
    "load_split",
    "ordered_classes",
    "split_connections",
    "top_with_other",
    "wait_class",
]

#: An active session that waits on nothing: running on CPU (or in uninstrumented code).
CPU: Final = "CPU"
#: Every wait class, in display order: ``CPU`` then PostgreSQL's ``wait_event_type`` values.
WAIT_CLASSES: Final[tuple[str, ...]] = (
    CPU,
    "Lock",
    "LWLock",
    "IO",
    "Client",
    "IPC",
    "Timeout",
    "Activity",
    "BufferPin",
    "Extension",
)
#: Applications and code labels kept per sample; the rest are counted as :data:`OTHER`.
LOAD_TOP: Final = 10
#: The name under which the sessions beyond the top ones are counted.
OTHER: Final = "other"
#: The name of sessions without an application name (as the status groups name them).
NO_LABEL: Final = "(none)"
#: The name of sessions whose statement carries no code label (as the status's by-code
#: grouping names them).
NO_CODE: Final = "unknown"
#: The dimensions of a split, as the documents and the recorded samples name them.
LOAD_DIMENSIONS: Final[tuple[str, ...]] = ("wait_class", "application", "code")


def wait_class(conn: Connection) -> str:
    """The wait class of an active session: its ``wait_event_type``, ``CPU`` when None."""
    return conn.wait_event_type or CPU


def top_with_other(counts: Mapping[str, int], top: int = LOAD_TOP) -> dict[str, int]:
    """The ``top`` largest counts (ties by name), the rest summed under :data:`OTHER`.

    A name that is itself ``other`` is counted with the rest, so the key stays unambiguous.
    """
    ordered = sorted(((n, c) for n, c in counts.items() if c), key=lambda item: (-item[1], item[0]))
    kept = [(n, c) for n, c in ordered if n != OTHER][:top]
    rest = sum(counts.values()) - sum(c for _, c in kept)
    result = dict(kept)
    if rest:
        result[OTHER] = rest
    return result


@dataclass(frozen=True, slots=True)
class LoadSplit:
    """The active sessions of one snapshot, split three ways. Each split sums to
    :attr:`active_sessions`; only parts with sessions are listed, largest first (wait
    classes in :data:`WAIT_CLASSES` order).

    Attributes:
        active_sessions: sessions in state ``active``, the reader's own excluded (the
            snapshot's ``active_connections``).
        by_wait_class: sessions per wait class.
        by_application: sessions per application name (top :data:`LOAD_TOP`, then
            :data:`OTHER`; no name: :data:`NO_LABEL`).
        by_code: sessions per code label (the view, task or command of their statement;
            top :data:`LOAD_TOP`, then :data:`OTHER`; unlabelled: :data:`NO_CODE`).
    """

    active_sessions: int
    by_wait_class: dict[str, int]
    by_application: dict[str, int]
    by_code: dict[str, int]

    def as_dict(self) -> dict[str, dict[str, int]]:
        """The split as the documents and the recorded samples hold it
        (``{"wait_class": {...}, "application": {...}, "code": {...}}``)."""
        return {
            "wait_class": dict(self.by_wait_class),
            "application": dict(self.by_application),
            "code": dict(self.by_code),
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> LoadSplit | None:
        """The split :meth:`as_dict` wrote (None for a sample recorded without one)."""
        if not value:
            return None
        parts = {
            k: {str(n): int(c) for n, c in (value.get(k) or {}).items()} for k in LOAD_DIMENSIONS
        }
        return cls(
            active_sessions=sum(parts["wait_class"].values()),
            by_wait_class=parts["wait_class"],
            by_application=parts["application"],
            by_code=parts["code"],
        )


def ordered_classes(counts: Mapping[str, int]) -> dict[str, int]:
    """The classes of ``counts`` with sessions, in :data:`WAIT_CLASSES` order (others after)."""
    result = {name: counts[name] for name in WAIT_CLASSES if counts.get(name)}
    # a class a future server version invents is kept, after the known ones
    result.update(sorted((n, c) for n, c in counts.items() if n not in result and c))
    return result


def load_split(snapshot: Snapshot, top: int = LOAD_TOP) -> LoadSplit:
    """The load split of ``snapshot``'s active sessions (see :class:`LoadSplit`)."""
    return split_connections((c for c in snapshot.others() if c.state == "active"), top)


def split_connections(active: Iterable[Connection], top: int = LOAD_TOP) -> LoadSplit:
    """The load split of sessions already known to be active."""
    sessions = tuple(active)
    classes: Counter[str] = Counter(map(wait_class, sessions))
    applications: Counter[str] = Counter(c.application_name or NO_LABEL for c in sessions)
    codes: Counter[str] = Counter(c.code or NO_CODE for c in sessions)
    return LoadSplit(
        active_sessions=len(sessions),
        by_wait_class=ordered_classes(classes),
        by_application=top_with_other(applications, top),
        by_code=top_with_other(codes, top),
    )


def chart_parts(
    named_sums: Iterable[tuple[str, float | None]], samples: int, aas: float
) -> dict[str, float]:
    """The parts of one load chart point: each named part's summed active sessions over
    the bucket's ``samples``, and what is left of its ``aas`` as :data:`OTHER` (sessions of
    no named part; rounding noise below 0.005 session is dropped). Parts without sessions
    are left out."""
    parts = {name: total / samples for name, total in named_sums if total}
    rest = round(aas - sum(parts.values()), 6)
    if rest > 0.005:
        parts[OTHER] = rest
    return parts
