"""Helpers shared across test directories (and ``bench/``): live servers, a throwaway PostgreSQL, child-process
environments. Fixtures defined here are registered once, in ``tests/conftest.py``."""
