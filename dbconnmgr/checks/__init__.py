"""Django system checks (``manage.py check``), one module per subject.

Importing this package registers every check; ``DbConnMgrConfig.ready()`` does it.
Check ids are ``dbconnmgr.E0xx`` / ``dbconnmgr.W0xx`` and are listed in the docs.
"""

from dbconnmgr.checks import (
    app_settings,  # noqa: F401
    attribution,  # noqa: F401
    audit,  # noqa: F401
    databases,  # noqa: F401
    pool_fit,  # noqa: F401
)
