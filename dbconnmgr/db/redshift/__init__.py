"""Django's PostgreSQL backend for Amazon Redshift: vendor ``redshift``, the cluster's
connection limit in ``OPTIONS``. ``ENGINE = "dbconnmgr.db.redshift"`` (``database_config()``
sets it for ``redshift://`` URLs). See docs/redshift.md.
"""
