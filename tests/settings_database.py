"""example_project's settings plus an alias ``broken``: ``default`` changed by
``$BROKEN_DATABASE_JSON``.

For tests that run manage.py in a subprocess against a broken database entry (unknown
ENGINE, missing driver, bad OPTIONS): top-level keys replace default's, ``OPTIONS`` keys
are merged into its OPTIONS. ``default`` stays intact (Django itself needs it at setup).
"""

from __future__ import annotations

import json
import os

from example_project.settings import *  # noqa: F403
from example_project.settings import DATABASES

_override = json.loads(os.environ.get("BROKEN_DATABASE_JSON") or "{}")
DATABASES["broken"] = {
    **DATABASES["default"],
    **{key: value for key, value in _override.items() if key != "OPTIONS"},
    "OPTIONS": {**DATABASES["default"].get("OPTIONS", {}), **_override.get("OPTIONS", {})},
}
