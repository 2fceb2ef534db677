"""MariaDB / MySQL: the reader (:mod:`.reader`) with its statements (:mod:`.sql`), their
rows (:mod:`.rows`) and mysqlclient's facts (:mod:`.driver`).

Nothing is imported here: the registry (:mod:`dbconnmgr.backends.registry`) imports the
reader when the backend is first used.
"""
