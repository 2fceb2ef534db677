"""Amazon Redshift: the reader (SQL over Redshift's system views), the cluster's connection
limit, and the peak hours from its retained history."""

from dbconnmgr.backends.redshift.limits import (
    NODE_TYPE_LIMITS,
    ClusterLimit,
    LimitError,
    cluster_limit,
)
from dbconnmgr.backends.redshift.reader import RedshiftBackend

__all__ = ["NODE_TYPE_LIMITS", "ClusterLimit", "LimitError", "RedshiftBackend", "cluster_limit"]
