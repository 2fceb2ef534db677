"""Django's PostgreSQL backend plus the connector gate and pool errors that explain themselves.

``ENGINE = "dbconnmgr.db.postgresql"`` (``database_config()`` sets it when it turns the pool
on). See docs/configuration.md and docs/metrics.md.
"""
