"""The cluster's connection limit: Redshift does not show it, so the alias says it.

``OPTIONS["node_type"]`` (a node type whose limit AWS publishes) or
``OPTIONS["max_connections"]`` (the number) of a ``dbconnmgr.db.redshift`` alias;
:func:`cluster_limit` turns them into the limit and says where it came from, and the
``dbconnmgr.E030`` system check refuses an alias with neither, an unknown node type or an
impossible number. docs/redshift.md ("Slots") has the sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: Connections per cluster that AWS publishes, by node type (Management Guide, "Quotas and
#: limits in Amazon Redshift"): 2,000 for the RA3 types it names and for Serverless; 500,
#: the figure its page gave every cluster before 2019, for the DC2 and DS2 types, for which
#: the current page gives none.
NODE_TYPE_LIMITS: Final[dict[str, int]] = {
    "ra3.xlplus": 2000,
    "ra3.4xlarge": 2000,
    "ra3.16xlarge": 2000,
    "serverless": 2000,
    "dc2.large": 500,
    "dc2.8xlarge": 500,
    "ds2.xlarge": 500,
    "ds2.8xlarge": 500,
}
#: The most connections any Redshift deployment allows (AWS's published maximum).
MAX_CLUSTER_CONNECTIONS: Final = 2000


class LimitError(ValueError):
    """The alias's connection-limit setting is missing or impossible (one line)."""


@dataclass(frozen=True, slots=True)
class ClusterLimit:
    """The limit dbconnmgr counts against, and where it came from.

    Attributes:
        max_connections: the cluster's connection limit.
        node_type: the node type it was looked up for (None: given as a number).
        source: ``node type ra3.4xlarge (AWS's published limit)`` or
            ``OPTIONS["max_connections"]``, for the status table and the budget.
    """

    max_connections: int
    node_type: str | None
    source: str


def cluster_limit(options: Mapping[str, Any], alias: str) -> ClusterLimit:
    """The alias's cluster limit from its ``OPTIONS``.

    An explicit ``max_connections`` wins over ``node_type`` (a cluster whose limit differs
    from the published one).

    Raises:
        LimitError: neither is given, the node type is unknown, or the number is not a
            whole number from 1 to 2,000.
    """
    given = options.get("max_connections")
    node_type = options.get("node_type")
    if given is not None:
        try:
            number = int(str(given).strip())
        except ValueError:
            number = 0
        if str(given).strip() != str(number) or not 1 <= number <= MAX_CLUSTER_CONNECTIONS:
            raise LimitError(
                f"database {alias!r}: OPTIONS['max_connections'] must be a whole number from 1 "
                f"to {MAX_CLUSTER_CONNECTIONS} (AWS's largest published limit), got {given!r}"
            )
        return ClusterLimit(number, None, "OPTIONS['max_connections']")
    if node_type is None or not str(node_type).strip():
        raise LimitError(
            f"database {alias!r}: Redshift does not show its connection limit: set "
            "OPTIONS['node_type'] (one of " + ", ".join(NODE_TYPE_LIMITS) + ") or "
            "OPTIONS['max_connections'] (DB_REDSHIFT_NODE_TYPE / DB_REDSHIFT_MAX_CONNECTIONS "
            "with database_config())"
        )
    name = str(node_type).strip().lower()
    if name not in NODE_TYPE_LIMITS:
        raise LimitError(
            f"database {alias!r}: unknown or unpublished Redshift node type {node_type!r} "
            f"(known: {', '.join(NODE_TYPE_LIMITS)}); give the limit as "
            "OPTIONS['max_connections']"
        )
    return ClusterLimit(NODE_TYPE_LIMITS[name], name, f"node type {name} (AWS's published limit)")
