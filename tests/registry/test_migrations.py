"""Schema migrations from an empty database, re-run, and concurrent start-up of several replicas."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from meshctx_service.registry import make_engine, upgrade_database
from meshctx_service.registry.migrate import current_revision, head_revision
from meshctx_service.registry.models import Base
from meshctx_service.registry.schema import HEAD_REVISION, SQLITE_SCHEMA, ensure_schema
from tests.support.env import checkout_env


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
    assert head_revision() == HEAD_REVISION, "bump HEAD_REVISION in schema.py with every new migration"


def _schema(url: str) -> dict[str, object]:
    """Everything a schema is made of, table by table, column order aside."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = inspect(connection)
            schema: dict[str, object] = {}
            for table in sorted(found.get_table_names()):
                columns = sorted(
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in found.get_columns(table)
                )
                schema[table] = {
                    "columns": columns,
                    "primary_key": found.get_pk_constraint(table),
                    "indexes": sorted(found.get_indexes(table), key=lambda index: str(index["name"])),
                    "unique": sorted(found.get_unique_constraints(table), key=lambda unique: str(unique["name"])),
                    "foreign_keys": found.get_foreign_keys(table),
                    "checks": sorted(found.get_check_constraints(table), key=lambda check: str(check["name"])),
                }
            return schema
    finally:
        engine.dispose()


def _assert_at_head_as_the_models_make_it(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == HEAD_REVISION
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_ensure_schema_creates_an_empty_database_as_the_migrations_would(db_url: str, tmp_path: Path) -> None:
    ensure_schema(db_url)  # empty database: the models' tables, stamped at the head revision, in this process
    _assert_at_head_as_the_models_make_it(db_url)
    migrated = f"sqlite:///{tmp_path / 'migrated.db'}" if db_url.startswith("sqlite") else None
    if migrated is not None:  # the same schema as Alembic builds (PostgreSQL: compare_metadata above)
        upgrade_database(migrated)
        assert _schema(db_url) == _schema(migrated)
    assert upgrade_database(db_url) == HEAD_REVISION  # Alembic agrees: nothing to do
    ensure_schema(db_url)  # already current: one query, nothing else


def test_concurrent_start_ups_on_an_empty_database_create_it_once(db_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: ensure_schema(db_url), range(4)))
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()


def test_ensure_schema_migrates_an_older_database_in_a_child_interpreter(db_url: str) -> None:
    assert upgrade_database(db_url, "0001") == "0001"
    ensure_schema(db_url)
    _assert_at_head_as_the_models_make_it(db_url)


def _loaded_after_start_ups(*urls: str) -> list[str]:
    """Which of SQLAlchemy and Alembic a fresh interpreter holds after ``ensure_schema`` of each URL in turn."""
    calls = "".join(f"ensure_schema({url!r})\n" for url in urls)
    probe = (
        "import sys\n"
        "from meshctx_service.registry import ensure_schema\n"
        f"{calls}"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'})))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=checkout_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_start_up_never_loads_alembic_into_the_server(tmp_path: Path) -> None:
    """Fresh and outdated databases alike: Alembic (11 MB) runs, if at all, in a child that exits."""
    older = f"sqlite:///{tmp_path / 'older.db'}"
    upgrade_database(older, "0002")
    assert _loaded_after_start_ups(f"sqlite:///{tmp_path / 'fresh.db'}", older) == ["sqlalchemy"]


def test_the_sqlite_schema_start_up_creates_is_what_the_models_create(tmp_path: Path) -> None:
    """``SQLITE_SCHEMA`` (start-up creates a SQLite file from it without SQLAlchemy) is, statement for statement
    and whitespace aside, what ``Base.metadata.create_all`` runs on SQLite: after a model changes, paste the
    statements this test prints into schema.py (and add a migration)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'models.db'}")
    try:
        with engine.begin() as connection:
            Base.metadata.create_all(connection)
            rows = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL").all()
    finally:
        engine.dispose()
    models = sorted(" ".join(str(row[0]).split()) for row in rows)
    shipped = sorted(" ".join(statement.split()) for statement in SQLITE_SCHEMA if "alembic_version" not in statement)
    assert shipped == models, "\n\n".join(str(row[0]) for row in rows)


def test_start_up_on_a_sqlite_file_loads_no_sqlalchemy(tmp_path: Path) -> None:
    """A fresh SQLite file is created, and then checked at the head revision, with sqlite3 alone; it is then
    what the migrations leave (WAL mode, stamped ``HEAD_REVISION``)."""
    url = f"sqlite:///{tmp_path / 'data' / 'meshctx.db'}"
    assert _loaded_after_start_ups(url, url) == []
    engine = make_engine(url)
    try:
        assert current_revision(engine) == HEAD_REVISION
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()
