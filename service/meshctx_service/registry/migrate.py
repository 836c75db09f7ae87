"""Schema migrations, shipped inside the package and run programmatically (no alembic.ini needed).

``upgrade`` is safe to call from every replica at start-up at once: on PostgreSQL the whole upgrade runs
in one transaction holding a transaction-scoped advisory lock, and on SQLite under ``BEGIN IMMEDIATE``, so
concurrent upgrades run one after the other and the later ones find nothing to do.

Alembic is imported only when a migration runs: the service checks the schema's revision with one query at
start-up (``ensure_schema``) and migrates in a short-lived child process, so Alembic's ~11 MB never stay in a
long-running server.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from .engine import SQLITE_BEGIN, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 0x6D657368  # "mesh"
#: The newest migration's revision id; a test keeps it equal to what Alembic finds in ``migrations/``.
HEAD_REVISION = "0004"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema's revision (None for an empty database), read with one query, without Alembic."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_engine(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision now current."""
    from alembic import command

    config = _config()
    with engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}).begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return current_revision(engine)


def upgrade_database(url: str, revision: str = "head") -> str | None:
    """``meshctx db upgrade``: migrate the database at ``url`` to the newest schema."""
    engine = make_engine(url)
    try:
        return upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def ensure_schema(url: str) -> None:
    """Start-up: migrate the database at ``url`` to ``HEAD_REVISION`` unless it is there already.

    The migration runs in a spawned child process (same interpreter, same ``sys.path``) that exits when done.
    """
    engine = make_engine(url)
    try:
        if current_revision(engine) == HEAD_REVISION:
            return
    finally:
        engine.dispose()
    if multiprocessing.current_process().daemon:  # a daemonic process may not start children: migrate here
        upgrade_database(url)
        return
    child = multiprocessing.get_context("spawn").Process(target=upgrade_database, args=(url,), name="meshctx-migrate")
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(
            f"migrating the registry database to revision {HEAD_REVISION} failed (exit code {child.exitcode}); "
            f"its error is printed above. Run `meshctx db upgrade` to see it on its own."
        )


upgrade = upgrade_database
