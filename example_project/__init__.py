"""A small Django project that uses dbconnmgr, configured from the environment."""
