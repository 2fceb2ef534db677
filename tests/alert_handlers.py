"""Alert handlers the tests configure by dotted path."""

from __future__ import annotations

from dbconnmgr.alerts import Alert

RECEIVED: list[Alert] = []


def record(alert: Alert) -> None:
    """Keep the alert for the test to inspect."""
    RECEIVED.append(alert)


def explode(alert: Alert) -> None:
    """A broken handler."""
    raise RuntimeError("handler exploded")


class Tagged:
    """A handler class built from OPTIONS."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __call__(self, alert: Alert) -> None:
        RECEIVED.append(alert)


def to_file(alert: Alert) -> None:
    """Append one line per alert to ``$DBCONNMGR_TEST_ALERT_FILE`` (tests across processes)."""
    import os

    with open(os.environ["DBCONNMGR_TEST_ALERT_FILE"], "a") as out:
        out.write(f"{os.getpid()} {alert.status} {alert.finding.key} {alert.severity.label}\n")
