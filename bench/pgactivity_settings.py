"""example_project's settings plus django-pgactivity, for the close_idle bench's baseline."""

from __future__ import annotations

from example_project.settings import *  # noqa: F403
from example_project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "pgactivity"]
