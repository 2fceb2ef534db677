"""Integrations with other Django packages, each imported only by the project that uses it."""
