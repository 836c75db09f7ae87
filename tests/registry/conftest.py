"""Registry fixtures: every test that takes ``db_url`` runs twice, on a fresh SQLite file and on a fresh
database in a real PostgreSQL server (``tests/support/postgres.py``: one server per run, skipped loudly
where none can start)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctx_service.registry import Registry, make_engine, upgrade_database
from tests.support.postgres import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (schema not yet created) on each backend."""
    with database_url(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        yield Registry(engine)
    finally:
        engine.dispose()
