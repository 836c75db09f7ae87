"""Schema migrations, shipped inside the package and run programmatically (no alembic.ini needed).

``upgrade_database`` is safe to call from every replica at start-up at once: on PostgreSQL the whole upgrade runs
in one transaction holding a transaction-scoped advisory lock, and on SQLite under ``BEGIN IMMEDIATE``, so
concurrent upgrades run one after the other and the later ones find nothing to do.

Start-up (``schema.ensure_schema``, which reads a plain SQLite file itself and comes here for every other
database) never loads Alembic in the server, whose ~11 MB would stay for the process's life: a database at
``HEAD_REVISION`` is checked with one query; an empty one gets the models' tables and is stamped
``HEAD_REVISION`` in one transaction under the same lock (what the migrations build, column order aside: a test
compares the two); an older one is migrated by Alembic in a short-lived child interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect, text

from .engine import SQLITE_BEGIN, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 0x6D657368  # "mesh"


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
        return current_revision_of(connection)


def upgrade_engine(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision now current."""
    from alembic import command

    config = _config()
    with _serialized(engine) as connection:
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


def bring_to_head(url: str, head: str) -> None:
    """Start-up: bring the database at ``url`` to the newest revision ``head`` (``schema.HEAD_REVISION``) unless it
    is there already.

    An empty database is created here, in this process, from the models; one at an older revision is migrated
    by a child interpreter (``sys.executable -c``, this process's ``sys.path``) that loads only the registry's
    engine, models and migrations — never the embedding program's ``__main__``: the app starts the same from
    ``meshctx serve``, a script without a main guard, stdin or a notebook.
    """
    engine = make_engine(url)
    try:
        if current_revision(engine) == head or _create_if_empty(engine, head):
            return
    finally:
        engine.dispose()
    if not sys.executable:  # an embedded interpreter with no program to start: migrate here
        upgrade_database(url)
        return
    child = _spawn(url)
    _, errors = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(
            f"migrating the registry database to revision {head} failed (exit code {child.returncode}): "
            f"{errors.strip()[-2000:]}\nRun `meshctx db upgrade` to see it on its own."
        )


def _serialized(engine: Engine) -> AbstractContextManager[Connection]:
    """A write transaction that concurrent schema changes (from every replica) take one after the other."""
    transaction = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}).begin()

    @contextmanager
    def locked() -> Iterator[Connection]:
        with transaction as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            yield connection

    return locked()


def _create_if_empty(engine: Engine, head: str) -> bool:
    """Create the models' tables and stamp ``head`` when the database has no table at all; False when
    it has some (then the migrations decide). Checked again under the lock: another replica may have won."""
    from .models import Base

    with _serialized(engine) as connection:
        tables = inspect(connection).get_table_names()
        if tables:
            return current_revision_of(connection) == head
        Base.metadata.create_all(connection)
        version = MetaData()
        stamp = Table(
            "alembic_version",
            version,
            Column("version_num", String(32), nullable=False),
            PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
        )
        version.create_all(connection)
        connection.execute(stamp.insert().values(version_num=head))
    return True


def current_revision_of(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _spawn(url: str) -> subprocess.Popen[str]:
    """The child: this module loaded without the registry package's ``__init__`` (which loads the store and
    FastAPI); the URL comes in its environment, never on a command line others can read."""
    program = (
        "import os, sys, types\n"
        "registry = types.ModuleType('meshctx_service.registry')\n"
        f"registry.__path__ = [{str(MIGRATIONS.parent)!r}]\n"
        "sys.modules[registry.__name__] = registry\n"
        "from meshctx_service.registry.migrate import upgrade_database\n"
        "upgrade_database(os.environ.pop('MESHCTX_MIGRATE_URL'))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(entry for entry in sys.path if entry), MESHCTX_MIGRATE_URL=url)
    command = [sys.executable, "-c", program]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
