"""PostgreSQL: the reader (:mod:`.reader`) with its statements (:mod:`.sql`), their rows
(:mod:`.rows`) and psycopg's facts (:mod:`.driver`).

Nothing is imported here: the registry (:mod:`dbconnmgr.backends.registry`) imports the
reader when the backend is first used, and ``database_settings`` may read this package's
settings step before Django is set up.
"""
