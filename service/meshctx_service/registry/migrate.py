"""Schema migrations, shipped inside the package and run programmatically (no alembic.ini needed).

``upgrade`` is safe to call from every replica at start-up at once: on PostgreSQL the whole upgrade runs
in one transaction holding a transaction-scoped advisory lock, and on SQLite under ``BEGIN IMMEDIATE``, so
concurrent upgrades run one after the other and the later ones find nothing to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from .engine import SQLITE_BEGIN, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 0x6D657368  # "mesh"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_engine(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision now current."""
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


upgrade = upgrade_database
