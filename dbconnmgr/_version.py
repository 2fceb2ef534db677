"""The version, declared once: pyproject.toml reads it (setuptools dynamic), and so does
``dbconnmgr.__version__``."""

VERSION = "0.1.0"
