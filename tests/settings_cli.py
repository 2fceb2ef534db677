"""example_project's settings with ``DBCONNMGR`` taken from ``$DBCONNMGR_JSON``.

For tests that run manage.py in a subprocess with chosen thresholds or alert handlers.
"""

from __future__ import annotations

import json
import os

from example_project.settings import *  # noqa: F403

DBCONNMGR = json.loads(os.environ.get("DBCONNMGR_JSON") or "{}")
