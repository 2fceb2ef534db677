"""Benchmarks: ``python -m bench [NAME ...]``, each beside a baseline measured in the same run."""
