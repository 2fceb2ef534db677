"""The test settings with attribution on (subprocesses of tests/test_attribution.py)."""

from tests.settings import *  # noqa: F403

DBCONNMGR = {"ATTRIBUTION": True}
MIDDLEWARE = ["dbconnmgr.attribution.AttributionMiddleware", *MIDDLEWARE]  # noqa: F405 (W017)
