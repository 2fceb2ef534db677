"""The columns AWS documents for every Redshift system view the backend reads.

Each entry is copied from the AWS page named beside it (Amazon Redshift Database Developer
Guide, ``https://docs.aws.amazon.com/redshift/latest/dg/<page>.html``), in the page's
order, with the page's type names. tests/redshift/test_emulation.py compares the emulated
views with these lists, so the emulation cannot drift from the documentation unnoticed.

Where a page's table could not be read to its end here (the lists of STL_CONNECTION_LOG,
STL_WLM_QUERY and SYS_QUERY_HISTORY continue past the columns below on the live pages), the
list stops at the last column verified and ``complete`` is False: the emulation carries
those columns and no invented ones; docs/redshift.md says so.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVELOPER_GUIDE = "https://docs.aws.amazon.com/redshift/latest/dg/"


@dataclass(frozen=True)
class DocumentedView:
    """One system view as its AWS page documents it."""

    name: str
    page: str
    columns: tuple[tuple[str, str], ...]
    visibility: str
    complete: bool = True

    @property
    def url(self) -> str:
        return f"{DEVELOPER_GUIDE}{self.page}.html"


VIEWS: tuple[DocumentedView, ...] = (
    DocumentedView(
        "stv_sessions",
        "r_STV_SESSIONS",
        (
            ("starttime", "timestamp"),
            ("process", "integer"),
            ("user_name", "character(50)"),
            ("db_name", "character(50)"),
            ("timeout_sec", "int"),
        ),
        "all users; regular users see only their own rows",
    ),
    DocumentedView(
        "stl_sessions",
        "r_STL_SESSIONS",
        (
            ("userid", "integer"),
            ("starttime", "timestamp"),
            ("endtime", "timestamp"),
            ("process", "integer"),
            ("user_name", "character(50)"),
            ("db_name", "character(50)"),
            ("timeout_sec", "int"),
            ("timed_out", "int"),
        ),
        "all users; regular users see only their own rows",
    ),
    DocumentedView(
        "sys_session_history",
        "SYS_SESSION_HISTORY",
        (
            ("user_id", "char(50)"),
            ("session_id", "integer"),
            ("database_name", "char(50)"),
            ("status", "char"),
            ("session_timeout", "integer"),
            ("start_time", "timestamp"),
            ("end_time", "timestamp"),
        ),
        "all users; regular users see only their own rows",
    ),
    DocumentedView(
        "stv_inflight",
        "r_STV_INFLIGHT",
        (
            ("userid", "integer"),
            ("slice", "integer"),
            ("query", "integer"),
            ("label", "character(320)"),
            ("xid", "bigint"),
            ("pid", "integer"),
            ("starttime", "timestamp"),
            ("text", "character(100)"),
            ("suspended", "integer"),
            ("insert_pristine", "integer"),
            ("concurrency_scaling_status", "integer"),
        ),
        "all users; regular users see only their own rows; no leader-node-only queries",
    ),
    DocumentedView(
        "stv_recents",
        "r_STV_RECENTS",
        (
            ("userid", "integer"),
            ("status", "character(20)"),
            ("starttime", "timestamp"),
            ("duration", "integer"),
            ("user_name", "character(50)"),
            ("db_name", "character(50)"),
            ("query", "character(600)"),
            ("pid", "integer"),
        ),
        "all users; regular users see only their own rows",
    ),
    DocumentedView(
        "sys_query_history",
        "SYS_QUERY_HISTORY",
        (
            ("user_id", "integer"),
            ("query_id", "bigint"),
            ("query_label", "character(320)"),
            ("transaction_id", "bigint"),
            ("session_id", "integer"),
            ("database_name", "character(128)"),
            ("query_type", "character(32)"),
            ("status", "character(10)"),
            ("result_cache_hit", "Boolean"),
            ("start_time", "timestamp"),
            ("end_time", "timestamp"),
            ("elapsed_time", "bigint"),
            ("queue_time", "bigint"),
            ("execution_time", "bigint"),
            ("error_message", "character(512)"),
            ("returned_rows", "bigint"),
            ("returned_bytes", "bigint"),
            ("query_text", "character(4000)"),
            ("redshift_version", "character(256)"),
        ),
        "all users; regular users see only their own rows",
        complete=False,
    ),
    DocumentedView(
        "svv_transactions",
        "r_SVV_TRANSACTIONS",
        (
            ("txn_owner", "text"),
            ("txn_db", "text"),
            ("xid", "bigint"),
            ("pid", "integer"),
            ("txn_start", "timestamp"),
            ("lock_mode", "text"),
            ("lockable_object_type", "text"),
            ("relation", "integer"),
            ("granted", "boolean"),
        ),
        "all users; regular users see only their own rows (r_ALTER_USER says every row)",
    ),
    DocumentedView(
        "svv_user_info",
        "r_SVV_USER_INFO",
        (
            ("user_name", "text"),
            ("user_id", "integer"),
            ("createdb", "boolean"),
            ("superuser", "boolean"),
            ("catalog_update", "boolean"),
            ("connection_limit", "text"),
            ("syslog_access", "text"),
            ("last_ddl_timestamp", "timestamp"),
            ("session_timeout", "integer"),
            ("external_user_id", "text"),
        ),
        "all users; regular users see only their own row",
    ),
    DocumentedView(
        "pg_database_info",
        "r_PG_DATABASE_INFO",
        # datid and datconnlimit are the page's own; the others are PostgreSQL 8.0's
        # pg_database columns (https://www.postgresql.org/docs/8.0/catalog-pg-database.html),
        # which the page says the view extends.
        (
            ("datid", "oid"),
            ("datname", "name"),
            ("datdba", "int4"),
            ("encoding", "int4"),
            ("datistemplate", "bool"),
            ("datallowconn", "bool"),
            ("datlastsysoid", "oid"),
            ("datvacuumxid", "xid"),
            ("datfrozenxid", "xid"),
            ("dattablespace", "oid"),
            ("datconfig", "text[]"),
            ("datacl", "aclitem[]"),
            ("datconnlimit", "text"),
        ),
        "all users",
    ),
    DocumentedView(
        "stl_connection_log",
        "r_STL_CONNECTION_LOG",
        (
            ("event", "character(50)"),
            ("recordtime", "timestamp"),
            ("remotehost", "character(45)"),
            ("remoteport", "character(32)"),
            ("pid", "integer"),
            ("dbname", "character(50)"),
            ("username", "character(50)"),
            ("authmethod", "character(32)"),
            ("duration", "integer"),
            ("sslversion", "character(50)"),
            ("sslcipher", "character(128)"),
            ("mtu", "integer"),
            ("sslcompression", "character(64)"),
            ("sslexpansion", "character(64)"),
            ("iamauthguid", "character(36)"),
            ("application_name", "character(250)"),
            ("os_version", "character(64)"),
            ("driver_version", "character(64)"),
            ("plugin_name", "character(32)"),
            ("protocol_version", "integer"),
        ),
        "superusers only",
        complete=False,
    ),
    DocumentedView(
        "stv_wlm_service_class_config",
        "r_STV_WLM_SERVICE_CLASS_CONFIG",
        (
            ("service_class", "integer"),
            ("queueing_strategy", "character(32)"),
            ("num_query_tasks", "integer"),
            ("target_num_query_tasks", "integer"),
            ("evictable", "character(8)"),
            ("eviction_threshold", "bigint"),
            ("query_working_mem", "integer"),
            ("target_query_working_mem", "integer"),
            ("min_step_mem", "integer"),
            ("name", "character(64)"),
            ("max_execution_time", "bigint"),
            ("user_group_wild_card", "Boolean"),
            ("query_group_wild_card", "Boolean"),
            ("concurrency_scaling", "character(20)"),
            ("query_priority", "character(20)"),
            ("user_role_wild_card", "Boolean"),
        ),
        "superusers only",
    ),
    DocumentedView(
        "stv_wlm_service_class_state",
        "r_STV_WLM_SERVICE_CLASS_STATE",
        (
            ("service_class", "integer"),
            ("num_queued_queries", "integer"),
            ("num_executing_queries", "integer"),
            ("num_serviced_queries", "integer"),
            ("num_executed_queries", "integer"),
            ("num_evicted_queries", "integer"),
            ("num_concurrency_scaling_queries", "integer"),
        ),
        "superusers only",
    ),
    DocumentedView(
        "stv_wlm_query_state",
        "r_STV_WLM_QUERY_STATE",
        (
            ("xid", "integer"),
            ("task", "integer"),
            ("query", "integer"),
            ("service_class", "integer"),
            ("slot_count", "integer"),
            ("wlm_start_time", "timestamp"),
            ("state", "character(16)"),
            ("queue_time", "bigint"),
            ("exec_time", "bigint"),
            ("query_priority", "char(20)"),
        ),
        "all users; regular users see only their own rows",
    ),
    DocumentedView(
        "stl_wlm_query",
        "r_STL_WLM_QUERY",
        (
            ("userid", "integer"),
            ("xid", "integer"),
            ("task", "integer"),
            ("query", "integer"),
            ("service_class", "integer"),
            ("slot_count", "integer"),
            ("service_class_start_time", "timestamp"),
            ("queue_start_time", "timestamp"),
            ("queue_end_time", "timestamp"),
            ("total_queue_time", "bigint"),
            ("exec_start_time", "timestamp"),
            ("exec_end_time", "timestamp"),
            ("total_exec_time", "bigint"),
            ("service_class_end_time", "timestamp"),
            ("final_state", "character(16)"),
            ("est_peak_mem", "bigint"),
            ("query_priority", "char(20)"),
        ),
        "all users; regular users see only their own rows",
        complete=False,
    ),
)

#: AWS's type names as PostgreSQL's ``format_type`` spells the same type.
_SAME_TYPE = {
    "int": "integer",
    "int4": "integer",
    "bool": "boolean",
    "Boolean": "boolean",
    "timestamp": "timestamp without time zone",
    # An unbounded blank-padded string: AWS writes "char" where the values are words.
    "char": "bpchar",
}


def postgres_type(aws_type: str) -> str:
    """``character(50)`` -> ``character(50)``; ``char(20)`` -> ``character(20)``; ``int``
    -> ``integer``..."""
    if aws_type.startswith("char("):
        return "character" + aws_type[len("char") :]
    return _SAME_TYPE.get(aws_type, aws_type)
