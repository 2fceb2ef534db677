-- Amazon Redshift system views, emulated on PostgreSQL 17+ for tests, benchmarks and the
-- demo (devtools/redshiftemu.py installs it; docs/redshift.md says what it proves).
--
-- Schema redshift_catalog holds only AWS's names, columns and types (each cited to its
-- page in tests/redshift/catalog.py, which a test compares with these views); it comes
-- first in the database's search_path, so unqualified names resolve as on a cluster.
-- Schema redshift_emulation holds what feeds them: settings per user, the session log
-- (written by a login event trigger and by tests), the WLM queues and queries.
--
-- Live views read pg_stat_activity and pg_locks, so real sessions appear and
-- pg_terminate_backend / pg_cancel_backend really act on them. Views run with their
-- owner's (a superuser's) rights, as system views do; each applies Redshift's visibility
-- itself: a superuser or a user with SYSLOG ACCESS UNRESTRICTED sees every row of a
-- user-visible view, any other user only rows of their own sessions; superuser-visible
-- views are closed to everyone else.

CREATE SCHEMA redshift_catalog;
CREATE SCHEMA redshift_emulation;
GRANT USAGE ON SCHEMA redshift_catalog, redshift_emulation TO PUBLIC;

-- ---------------------------------------------------------------- feeding tables ----------
-- ALTER USER ... SYSLOG ACCESS / SESSION TIMEOUT, which PostgreSQL has no clause for.
-- CONNECTION LIMIT is PostgreSQL's own (rolconnlimit): the server really enforces it.
CREATE TABLE redshift_emulation.user_settings (
    usename name PRIMARY KEY,
    syslog_access text NOT NULL DEFAULT 'RESTRICTED'
        CHECK (syslog_access IN ('RESTRICTED', 'UNRESTRICTED')),
    session_timeout integer NOT NULL DEFAULT 0
);
GRANT SELECT ON redshift_emulation.user_settings TO PUBLIC;

-- One row per session: the login trigger writes live sessions; tests add history rows
-- (synthetic = true) with their own times. PostgreSQL has no logout trigger: a logged
-- session that has ended without a recorded end_time shows end_time = start_time.
CREATE TABLE redshift_emulation.session_log (
    pid integer NOT NULL,
    backend_start timestamptz,           -- matches the live backend (pids are reused)
    user_name name NOT NULL,
    user_id integer,
    db_name name NOT NULL,
    start_time timestamp NOT NULL,        -- UTC, as Redshift's timestamps
    end_time timestamp,
    timeout_sec integer NOT NULL DEFAULT 0,
    timed_out integer,                    -- STL_SESSIONS: 0 error, 1 timeout, 2 client, 3 internal
    application_name text NOT NULL DEFAULT '',
    remotehost text NOT NULL DEFAULT '',
    remoteport text NOT NULL DEFAULT '',
    synthetic boolean NOT NULL DEFAULT true
);
CREATE INDEX ON redshift_emulation.session_log (pid, backend_start);

-- Finished queries beside the live ones (SYS_QUERY_HISTORY); tests add rows.
CREATE TABLE redshift_emulation.query_log (
    query_id bigserial,
    user_id integer NOT NULL DEFAULT 100,
    session_id integer NOT NULL,
    transaction_id bigint NOT NULL DEFAULT 0,
    database_name name NOT NULL DEFAULT current_database(),
    status text NOT NULL DEFAULT 'success',
    start_time timestamp NOT NULL,
    end_time timestamp,
    query_text text NOT NULL DEFAULT ''
);

-- WLM: the queues (service classes) and the queries WLM tracks, fed by tests.
CREATE TABLE redshift_emulation.wlm_queue (
    service_class integer PRIMARY KEY,
    name text NOT NULL,
    num_query_tasks integer NOT NULL,     -- -1: automatic WLM
    query_working_mem integer NOT NULL DEFAULT -1,
    max_execution_time bigint NOT NULL DEFAULT 0,
    concurrency_scaling text NOT NULL DEFAULT 'off',
    query_priority text NOT NULL DEFAULT 'Normal'
);
CREATE TABLE redshift_emulation.wlm_query (
    query integer PRIMARY KEY,
    xid integer NOT NULL DEFAULT 0,
    task integer NOT NULL DEFAULT 0,
    userid integer NOT NULL DEFAULT 100,
    service_class integer NOT NULL,
    slot_count integer NOT NULL DEFAULT 1,
    state text NOT NULL,                  -- Queued, QueuedWaiting, Running, Returning...
    wlm_start_time timestamp NOT NULL,    -- entered the queue
    exec_start_time timestamp,            -- started running (NULL while queued)
    query_priority text NOT NULL DEFAULT 'Normal'
);
-- Finished attempts (STL_WLM_QUERY): the history wlm_apex_hourly reads.
CREATE TABLE redshift_emulation.wlm_query_log (
    userid integer NOT NULL DEFAULT 100,
    xid integer NOT NULL DEFAULT 0,
    task integer NOT NULL DEFAULT 0,
    query integer NOT NULL DEFAULT 0,
    service_class integer NOT NULL,
    slot_count integer NOT NULL DEFAULT 1,
    service_class_start_time timestamp NOT NULL,
    queue_start_time timestamp,
    queue_end_time timestamp,
    exec_start_time timestamp,
    exec_end_time timestamp,
    service_class_end_time timestamp NOT NULL,
    final_state text NOT NULL DEFAULT 'Completed',
    query_priority text NOT NULL DEFAULT 'Normal'
);

-- ---------------------------------------------------------------- helpers ------------------
-- Whether the session's user sees every row of user-visible views. Views call these as
-- (SELECT ...): an uncorrelated subquery runs once per statement, not once per row.
CREATE FUNCTION redshift_emulation.sees_all() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)
        OR coalesce((SELECT syslog_access = 'UNRESTRICTED'
                     FROM redshift_emulation.user_settings WHERE usename = current_user), false)
$$;
CREATE FUNCTION redshift_emulation.is_superuser() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)
$$;
-- PostgreSQL's timestamptz as Redshift's UTC timestamp.
CREATE FUNCTION redshift_emulation.utc(value timestamptz) RETURNS timestamp
LANGUAGE sql IMMUTABLE AS $$ SELECT value AT TIME ZONE 'UTC' $$;
-- Microseconds between two timestamps, capped to an integer column's range.
CREATE FUNCTION redshift_emulation.us(since timestamptz, until timestamptz) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM until - since) * 1000000)::bigint
$$;

-- GETDATE(): the start of the current statement in UTC, whole seconds (page r_GETDATE).
CREATE FUNCTION redshift_catalog.getdate() RETURNS timestamp
LANGUAGE sql STABLE AS $$
    SELECT date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC')
$$;

-- Every backend as a superuser sees it: pg_stat_activity hides other users' columns from
-- its caller, and a view's caller is the session's user, not the view's owner.
CREATE FUNCTION redshift_emulation.backends() RETURNS SETOF pg_stat_activity
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT * FROM pg_stat_activity
$$;

-- The client backends as Redshift's sessions, with the reader's visibility applied.
CREATE VIEW redshift_emulation.visible_backends AS
SELECT a.*
FROM redshift_emulation.backends() a
WHERE a.backend_type = 'client backend'
  AND ((SELECT redshift_emulation.sees_all()) OR a.usename = current_user);

-- ---------------------------------------------------------------- sessions -----------------
CREATE VIEW redshift_catalog.stv_sessions AS
SELECT redshift_emulation.utc(a.backend_start) AS starttime,
       a.pid::integer AS process,
       a.usename::character(50) AS user_name,
       a.datname::character(50) AS db_name,
       coalesce(s.session_timeout, 0)::integer AS timeout_sec
FROM redshift_emulation.visible_backends a
LEFT JOIN redshift_emulation.user_settings s ON s.usename = a.usename;

-- The session log joined to the live backends: alive rows are active, gone ones closed.
CREATE VIEW redshift_emulation.sessions_logged AS
SELECT l.*,
       live.pid IS NOT NULL AS alive,
       CASE WHEN live.pid IS NOT NULL THEN NULL
            ELSE coalesce(l.end_time, l.start_time) END AS ended
FROM redshift_emulation.session_log l
LEFT JOIN redshift_emulation.backends() live
       ON NOT l.synthetic AND live.pid = l.pid AND live.backend_start = l.backend_start
WHERE (SELECT redshift_emulation.sees_all()) OR l.user_name = current_user;

CREATE VIEW redshift_catalog.stl_sessions AS
SELECT coalesce(l.user_id, r.oid::integer, 0)::integer AS userid,
       l.start_time AS starttime,
       l.ended AS endtime,
       l.pid AS process,
       l.user_name::character(50) AS user_name,
       l.db_name::character(50) AS db_name,
       l.timeout_sec::integer AS timeout_sec,
       CASE WHEN l.alive THEN NULL ELSE coalesce(l.timed_out, 2) END::integer AS timed_out
FROM redshift_emulation.sessions_logged l
LEFT JOIN pg_roles r ON r.rolname = l.user_name;

CREATE VIEW redshift_catalog.sys_session_history AS
SELECT coalesce(l.user_id, r.oid::integer, 0)::text::character(50) AS user_id,
       l.pid AS session_id,
       l.db_name::character(50) AS database_name,
       (CASE WHEN l.alive THEN 'active'
             WHEN l.timed_out = 1 THEN 'timed out'
             ELSE 'closed' END)::bpchar AS status,
       l.timeout_sec::integer AS session_timeout,
       l.start_time AS start_time,
       l.ended AS end_time
FROM redshift_emulation.sessions_logged l
LEFT JOIN pg_roles r ON r.rolname = l.user_name;

-- Superuser-visible: logins, and disconnections whose time is known.
CREATE VIEW redshift_catalog.stl_connection_log AS
SELECT e.event::character(50) AS event,
       e.recordtime AS recordtime,
       l.remotehost::character(45) AS remotehost,
       l.remoteport::character(32) AS remoteport,
       l.pid AS pid,
       l.db_name::character(50) AS dbname,
       l.user_name::character(50) AS username,
       'password'::character(32) AS authmethod,
       CASE WHEN e.event = 'disconnecting session'
            THEN least(redshift_emulation.us(l.start_time AT TIME ZONE 'UTC',
                                             l.ended AT TIME ZONE 'UTC'), 2147483647)
            ELSE 0 END::integer AS duration,
       ''::character(50) AS sslversion,
       ''::character(128) AS sslcipher,
       0::integer AS mtu,
       ''::character(64) AS sslcompression,
       ''::character(64) AS sslexpansion,
       ''::character(36) AS iamauthguid,
       l.application_name::character(250) AS application_name,
       ''::character(64) AS os_version,
       ''::character(64) AS driver_version,
       'none'::character(32) AS plugin_name,
       0::integer AS protocol_version
FROM redshift_emulation.sessions_logged l
CROSS JOIN LATERAL (
    VALUES ('initiating session', l.start_time),
           ('disconnecting session', CASE WHEN l.end_time IS NOT NULL THEN l.ended END)
) AS e (event, recordtime)
WHERE e.recordtime IS NOT NULL AND (SELECT redshift_emulation.is_superuser());

-- ---------------------------------------------------------------- queries ------------------
CREATE VIEW redshift_catalog.stv_recents AS
SELECT a.usesysid::integer AS userid,
       (CASE WHEN a.state = 'active' THEN 'Running' ELSE 'Done' END)::character(20) AS status,
       redshift_emulation.utc(a.query_start) AS starttime,
       least(redshift_emulation.us(
           a.query_start,
           CASE WHEN a.state = 'active' THEN clock_timestamp() ELSE a.state_change END
       ), 2147483647)::integer AS duration,
       a.usename::character(50) AS user_name,
       a.datname::character(50) AS db_name,
       left(a.query, 600)::character(600) AS query,
       (CASE WHEN a.state = 'active' THEN a.pid ELSE -1 END)::integer AS pid
FROM redshift_emulation.visible_backends a
WHERE a.query_start IS NOT NULL;

CREATE VIEW redshift_catalog.stv_inflight AS
SELECT a.usesysid::integer AS userid,
       0::integer AS slice,
       abs(hashtext(a.pid::text || a.query_start::text))::integer AS query,
       ''::character(320) AS label,
       coalesce(a.backend_xid::text::bigint, 0)::bigint AS xid,
       a.pid::integer AS pid,
       redshift_emulation.utc(a.query_start) AS starttime,
       left(a.query, 100)::character(100) AS text,
       0::integer AS suspended,
       0::integer AS insert_pristine,
       0::integer AS concurrency_scaling_status
FROM redshift_emulation.visible_backends a
WHERE a.state = 'active';

-- Live queries (running, or the last one of each session) and the logged ones.
CREATE VIEW redshift_catalog.sys_query_history AS
SELECT a.usesysid::integer AS user_id,
       abs(hashtext(a.pid::text || a.query_start::text))::bigint AS query_id,
       ''::character(320) AS query_label,
       coalesce(a.backend_xid::text::bigint, 0)::bigint AS transaction_id,
       a.pid::integer AS session_id,
       a.datname::character(128) AS database_name,
       upper(split_part(ltrim(a.query), ' ', 1))::character(32) AS query_type,
       (CASE WHEN a.state = 'active' THEN 'running' ELSE 'success' END)::character(10) AS status,
       false AS result_cache_hit,
       redshift_emulation.utc(a.query_start) AS start_time,
       CASE WHEN a.state = 'active' THEN NULL
            ELSE redshift_emulation.utc(a.state_change) END AS end_time,
       redshift_emulation.us(
           a.query_start,
           CASE WHEN a.state = 'active' THEN clock_timestamp() ELSE a.state_change END
       )::bigint AS elapsed_time,
       0::bigint AS queue_time,
       redshift_emulation.us(
           a.query_start,
           CASE WHEN a.state = 'active' THEN clock_timestamp() ELSE a.state_change END
       )::bigint AS execution_time,
       ''::character(512) AS error_message,
       0::bigint AS returned_rows,
       0::bigint AS returned_bytes,
       left(a.query, 4000)::character(4000) AS query_text,
       'emulation'::character(256) AS redshift_version
FROM redshift_emulation.visible_backends a
WHERE a.query_start IS NOT NULL
UNION ALL
SELECT q.user_id, q.query_id, ''::character(320), q.transaction_id, q.session_id,
       q.database_name::character(128), 'SELECT'::character(32), q.status::character(10),
       false, q.start_time, q.end_time,
       coalesce(redshift_emulation.us(q.start_time AT TIME ZONE 'UTC',
                                      q.end_time AT TIME ZONE 'UTC'), 0),
       0::bigint,
       coalesce(redshift_emulation.us(q.start_time AT TIME ZONE 'UTC',
                                      q.end_time AT TIME ZONE 'UTC'), 0),
       ''::character(512), 0::bigint, 0::bigint, q.query_text::character(4000),
       'emulation'::character(256)
FROM redshift_emulation.query_log q
WHERE (SELECT redshift_emulation.sees_all())
   OR q.user_id = (SELECT oid::integer FROM pg_roles WHERE rolname = current_user);

-- ---------------------------------------------------------------- transactions -------------
-- One ExclusiveLock on its own transaction id per open transaction (the page: such a
-- granted row is an open transaction), plus the table locks it holds or waits for.
CREATE VIEW redshift_catalog.svv_transactions AS
SELECT a.usename::text AS txn_owner,
       a.datname::text AS txn_db,
       coalesce(a.backend_xid::text::bigint, 1000000000 + a.pid)::bigint AS xid,
       a.pid::integer AS pid,
       redshift_emulation.utc(a.xact_start) AS txn_start,
       k.lock_mode::text AS lock_mode,
       k.lockable_object_type::text AS lockable_object_type,
       k.relation::integer AS relation,
       k.granted::boolean AS granted
FROM redshift_emulation.visible_backends a
CROSS JOIN LATERAL (
    SELECT 'ExclusiveLock' AS lock_mode, 'transactionid' AS lockable_object_type,
           NULL::integer AS relation, true AS granted
    UNION ALL
    SELECT l.mode, 'relation', l.relation::integer, l.granted
    FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.database = a.datid
      -- user tables only: not the catalogs, nor the emulation's own views and tables
      AND c.oid >= 16384
      AND c.relnamespace NOT IN ('redshift_catalog'::regnamespace,
                                 'redshift_emulation'::regnamespace)
) AS k
WHERE a.xact_start IS NOT NULL;

-- ---------------------------------------------------------------- users and databases -----
CREATE VIEW redshift_catalog.svv_user_info AS
SELECT r.rolname::text AS user_name,
       r.oid::integer AS user_id,
       r.rolcreatedb AS createdb,
       r.rolsuper AS superuser,
       r.rolsuper AS catalog_update,
       (CASE WHEN r.rolconnlimit < 0 THEN 'UNLIMITED'
             ELSE r.rolconnlimit::text END)::text AS connection_limit,
       coalesce(s.syslog_access, 'RESTRICTED')::text AS syslog_access,
       NULL::timestamp AS last_ddl_timestamp,
       coalesce(s.session_timeout, 0)::integer AS session_timeout,
       NULL::text AS external_user_id
FROM pg_roles r
LEFT JOIN redshift_emulation.user_settings s ON s.usename = r.rolname
WHERE r.rolcanlogin
  AND ((SELECT redshift_emulation.is_superuser()) OR r.rolname = current_user);

-- PG_DATABASE_INFO: PostgreSQL 8.0's pg_database columns with oid as datid, and
-- datconnlimit as text.
CREATE VIEW redshift_catalog.pg_database_info AS
SELECT d.oid AS datid,
       d.datname AS datname,
       d.datdba::integer AS datdba,
       d.encoding::integer AS encoding,
       d.datistemplate AS datistemplate,
       d.datallowconn AS datallowconn,
       0::oid AS datlastsysoid,
       d.datfrozenxid AS datvacuumxid,
       d.datfrozenxid AS datfrozenxid,
       d.dattablespace AS dattablespace,
       NULL::text[] AS datconfig,
       d.datacl AS datacl,
       (CASE WHEN d.datconnlimit < 0 THEN 'UNLIMITED'
             ELSE d.datconnlimit::text END)::text AS datconnlimit
FROM pg_database d;

-- ---------------------------------------------------------------- WLM ----------------------
CREATE VIEW redshift_catalog.stv_wlm_service_class_config AS
SELECT q.service_class::integer AS service_class,
       'FIFO'::character(32) AS queueing_strategy,
       q.num_query_tasks::integer AS num_query_tasks,
       q.num_query_tasks::integer AS target_num_query_tasks,
       'true'::character(8) AS evictable,
       0::bigint AS eviction_threshold,
       q.query_working_mem::integer AS query_working_mem,
       q.query_working_mem::integer AS target_query_working_mem,
       0::integer AS min_step_mem,
       q.name::character(64) AS name,
       q.max_execution_time::bigint AS max_execution_time,
       false AS user_group_wild_card,
       false AS query_group_wild_card,
       q.concurrency_scaling::character(20) AS concurrency_scaling,
       q.query_priority::character(20) AS query_priority,
       false AS user_role_wild_card
FROM redshift_emulation.wlm_queue q
WHERE (SELECT redshift_emulation.is_superuser());

CREATE VIEW redshift_catalog.stv_wlm_query_state AS
SELECT w.xid::integer AS xid,
       w.task::integer AS task,
       w.query::integer AS query,
       w.service_class::integer AS service_class,
       w.slot_count::integer AS slot_count,
       w.wlm_start_time AS wlm_start_time,
       w.state::character(16) AS state,
       redshift_emulation.us(w.wlm_start_time AT TIME ZONE 'UTC',
                             coalesce(w.exec_start_time AT TIME ZONE 'UTC',
                                      clock_timestamp()))::bigint AS queue_time,
       coalesce(redshift_emulation.us(w.exec_start_time AT TIME ZONE 'UTC',
                                      clock_timestamp()), 0)::bigint AS exec_time,
       w.query_priority::character(20) AS query_priority
FROM redshift_emulation.wlm_query w
WHERE (SELECT redshift_emulation.sees_all())
   OR w.userid = (SELECT oid::integer FROM pg_roles WHERE rolname = current_user);

CREATE VIEW redshift_catalog.stv_wlm_service_class_state AS
SELECT q.service_class::integer AS service_class,
       count(w.query) FILTER (WHERE w.state IN ('Queued', 'QueuedWaiting'))::integer
           AS num_queued_queries,
       count(w.query) FILTER (WHERE w.state IN ('Running', 'Returning'))::integer
           AS num_executing_queries,
       (count(w.query) + coalesce(max(h.done), 0))::integer AS num_serviced_queries,
       coalesce(max(h.done), 0)::integer AS num_executed_queries,
       0::integer AS num_evicted_queries,
       0::integer AS num_concurrency_scaling_queries
FROM redshift_emulation.wlm_queue q
LEFT JOIN redshift_emulation.wlm_query w ON w.service_class = q.service_class
LEFT JOIN (SELECT service_class, count(*) AS done
           FROM redshift_emulation.wlm_query_log GROUP BY service_class) h
       ON h.service_class = q.service_class
WHERE (SELECT redshift_emulation.is_superuser())
GROUP BY q.service_class;

CREATE VIEW redshift_catalog.stl_wlm_query AS
SELECT h.userid::integer AS userid,
       h.xid::integer AS xid,
       h.task::integer AS task,
       h.query::integer AS query,
       h.service_class::integer AS service_class,
       h.slot_count::integer AS slot_count,
       h.service_class_start_time AS service_class_start_time,
       h.queue_start_time AS queue_start_time,
       h.queue_end_time AS queue_end_time,
       coalesce(redshift_emulation.us(h.queue_start_time AT TIME ZONE 'UTC',
                                      h.queue_end_time AT TIME ZONE 'UTC'), 0)::bigint
           AS total_queue_time,
       h.exec_start_time AS exec_start_time,
       h.exec_end_time AS exec_end_time,
       coalesce(redshift_emulation.us(h.exec_start_time AT TIME ZONE 'UTC',
                                      h.exec_end_time AT TIME ZONE 'UTC'), 0)::bigint
           AS total_exec_time,
       h.service_class_end_time AS service_class_end_time,
       h.final_state::character(16) AS final_state,
       0::bigint AS est_peak_mem,
       h.query_priority::character(20) AS query_priority
FROM redshift_emulation.wlm_query_log h
WHERE (SELECT redshift_emulation.sees_all())
   OR h.userid = (SELECT oid::integer FROM pg_roles WHERE rolname = current_user);

GRANT SELECT ON ALL TABLES IN SCHEMA redshift_catalog TO PUBLIC;

-- ---------------------------------------------------------------- the connection log ------
-- Every login to this database is logged as it happens (PostgreSQL 17+ login event
-- trigger). A failure here must never refuse the login: the trigger swallows its errors.
CREATE FUNCTION redshift_emulation.log_login() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO redshift_emulation.session_log
        (pid, backend_start, user_name, user_id, db_name, start_time, application_name,
         remotehost, remoteport, synthetic)
    SELECT a.pid, a.backend_start, a.usename, a.usesysid::integer, a.datname,
           a.backend_start AT TIME ZONE 'UTC', coalesce(a.application_name, ''),
           coalesce(host(a.client_addr), '[local]'), coalesce(a.client_port::text, ''),
           false
    FROM pg_stat_activity a WHERE a.pid = pg_backend_pid();
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;
CREATE EVENT TRIGGER redshift_connection_log ON login
    EXECUTE FUNCTION redshift_emulation.log_login();
