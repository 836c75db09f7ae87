"""Schema migrations from an empty database, re-run, and concurrent start-up of several replicas."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from meshctx_service.registry import make_engine, upgrade_database
from meshctx_service.registry.migrate import HEAD_REVISION, current_revision, ensure_schema, head_revision
from meshctx_service.registry.models import Base


def test_upgrade_from_empty_then_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert upgrade_database(db_url) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"clusters", "jobs", "attestations", "alembic_version"} <= tables
        with engine.connect() as connection:  # the migrated schema is exactly what the models declare
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert upgrade_database(db_url) == head_revision()  # re-run: nothing to do, no error
    finally:
        engine.dispose()


def test_concurrent_upgrades_serialize(db_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        revisions = list(pool.map(lambda _: upgrade_database(db_url), range(4)))
    assert revisions == [head_revision()] * 4


def test_head_revision_constant_is_alembics_head() -> None:
    assert head_revision() == HEAD_REVISION, "bump HEAD_REVISION in migrate.py with every new migration"


def test_ensure_schema_migrates_in_a_child_interpreter_once(db_url: str) -> None:
    ensure_schema(db_url)  # empty database: migrated by a child interpreter
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == HEAD_REVISION
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()
    ensure_schema(db_url)  # already current: one query, nothing else
