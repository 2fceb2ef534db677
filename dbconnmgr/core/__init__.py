"""The pure core: plain data and decisions, no I/O, no Django settings.

Everything here works on values handed in (a :class:`~dbconnmgr.core.snapshot.Snapshot`,
thresholds, services) and returns values; the backends read the server, the actions and
the command shell act and render. Importing this package imports neither Django's
settings nor ``dbconnmgr.database_settings``.
"""
