"""Benchmarks: ``python -m bench [NAME ...]``. Each prints figures beside a baseline from the same run."""
