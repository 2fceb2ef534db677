"""Amazon Redshift: the reader (SQL over Redshift's system views), its rows, the driver's
facts, the cluster's connection limit (``limits``) and the settings step of
``database_config()`` for ``redshift://`` URLs. Importing the package imports no driver."""
