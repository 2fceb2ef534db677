"""example_project's settings plus many aliases of one server, for the aliases bench.

``s00``... (``BENCH_ALIASES``, default 20) connect exactly as ``default`` does: one reader
serves them all. ``r00``... connect as roles of their own (``bench_r00``..., password
``bench``, members of pg_monitor, created by the bench): one reader each.
"""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import DATABASES

COUNT = int(os.environ.get("BENCH_ALIASES", "20"))
_default = DATABASES["default"]
DATABASES = {
    **DATABASES,
    **{f"s{i:02d}": {**_default} for i in range(COUNT)},
    **{
        f"r{i:02d}": {**_default, "USER": f"bench_r{i:02d}", "PASSWORD": "bench"}
        for i in range(COUNT)
    },
}
