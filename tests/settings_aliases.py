"""tests.settings plus 20 aliases of the suite's server, for reading several aliases at once.

``same00``-``same09`` connect exactly as ``default`` does (one reader serves them all);
``role00``-``role09`` connect as roles of their own (``t_alias00``..., password ``pw``,
created by the tests): one reader each.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

DATABASES = {
    **DATABASES,
    **{f"same{i:02d}": {**DATABASES["default"]} for i in range(10)},
    **{
        f"role{i:02d}": {**DATABASES["default"], "USER": f"t_alias{i:02d}", "PASSWORD": "pw"}
        for i in range(10)
    },
}

if os.environ.get("T_ALIASES_DOWN_PORT"):  # an alias of a server that is not there
    DATABASES["down"] = {**DATABASES["default"], "PORT": os.environ["T_ALIASES_DOWN_PORT"]}
