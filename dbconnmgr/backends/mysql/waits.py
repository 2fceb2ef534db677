"""What a MariaDB / MySQL thread waits on, from its processlist ``State``: the common model's
wait classes (PostgreSQL's ``wait_event_type`` names, :data:`dbconnmgr.core.load.WAIT_CLASSES`).

The processlist has no wait-event column (performance_schema's wait events are off by
default on MariaDB), so the class is read from the thread's stage, as the server names it
(MariaDB's "General Thread States"). A stage of executing work ("Sending data",
"executing", "statistics"...) is ``CPU``: running, not waiting. A state this table does not
name is ``CPU`` too, unless it says it waits for a lock ("Waiting for ... lock") or for
something else ("Waiting for ..." / "Waiting on ...": ``IPC``).
"""

from __future__ import annotations

from typing import Final

#: The wait class of each processlist State that is not plain work (CPU), by exact name.
STATE_WAIT_CLASSES: Final[dict[str, str]] = {
    # table and metadata locks: the classic pile-up behind a long ALTER or LOCK TABLES
    "Waiting for table metadata lock": "Lock",
    "Waiting for schema metadata lock": "Lock",
    "Waiting for stored function metadata lock": "Lock",
    "Waiting for stored procedure metadata lock": "Lock",
    "Waiting for trigger metadata lock": "Lock",
    "Waiting for event metadata lock": "Lock",
    "Waiting for table level lock": "Lock",
    "Waiting for table flush": "Lock",
    "Waiting for global read lock": "Lock",
    "Waiting for backup lock": "Lock",
    "Waiting for commit lock": "Lock",
    "System lock": "Lock",
    "User lock": "Lock",  # GET_LOCK()
    "Locked": "Lock",
    # the client: results not read yet, or a statement not fully received
    "Sending to client": "Client",
    "Writing to net": "Client",
    "Reading from net": "Client",
    # files: tables opened, temporary tables on disk
    "Opening tables": "IO",
    "Opening table": "IO",
    "Creating tmp table": "IO",
    "Copying to tmp table on disk": "IO",
    "converting HEAP to Aria": "IO",
    "converting HEAP to MyISAM": "IO",
    "Flushing tables": "IO",
    "Waiting for tables": "IO",
    # SLEEP(): waiting for time to pass, PostgreSQL's pg_sleep is class Timeout
    "User sleep": "Timeout",
    # other threads: replication, a condition of another thread
    "Waiting on cond": "IPC",
    "Waiting for the next event in relay log": "IPC",
    "Waiting for master to send event": "IPC",
    "Master has sent all binlog to slave; waiting for more updates": "IPC",
}


def state_wait_class(state: str | None) -> str | None:
    """The wait class of a running thread's processlist State; None: not waiting (CPU)."""
    if not state:
        return None
    found = STATE_WAIT_CLASSES.get(state)
    if found is not None:
        return found
    if state.startswith(("Waiting for", "Waiting on", "waiting for")):
        return "Lock" if "lock" in state.lower() else "IPC"
    return None
