"""Schema migrations, shipped inside the package and run programmatically (no alembic.ini needed).

``upgrade_database`` is safe to call from every replica at start-up at once: on PostgreSQL the whole upgrade runs
in one transaction holding a transaction-scoped advisory lock, and on SQLite under ``BEGIN IMMEDIATE``, so
concurrent upgrades run one after the other and the later ones find nothing to do.

Alembic is imported only when a migration runs: the service checks the schema's revision with one query at
start-up (``ensure_schema``) and migrates in a short-lived child interpreter, so Alembic's ~11 MB never stay in a
long-running server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from .engine import SQLITE_BEGIN, default_database_url, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

    from ..settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 0x6D657368  # "mesh"
#: The newest migration's revision id; a test keeps it equal to what Alembic finds in ``migrations/``.
HEAD_REVISION = "0003"


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


def start_upgrade(url: str) -> None:
    """Begin migrating ``url`` in a child interpreter unless it is at ``HEAD_REVISION``, and return at once;
    ``ensure_schema(url)`` later in this process waits for it. ``meshctx serve`` calls it before it loads the app,
    so a fresh database is migrated while the app's modules load."""
    if url not in _children and sys.executable and not _at_head(url):
        _children[url] = _spawn(url)


def start_settings_upgrade(settings: Settings) -> None:
    """``start_upgrade`` for the database the app started with ``settings`` uses; any error is left for the
    app's own ``ensure_schema`` to report."""
    try:
        start_upgrade(settings.database_url or default_database_url(settings.data_dir))
    except Exception:  # the app's start-up reports it, with its context
        return


def ensure_schema(url: str) -> None:
    """Start-up: migrate the database at ``url`` to ``HEAD_REVISION`` unless it is there already.

    The migration runs in a child interpreter (``sys.executable -c``, this process's ``sys.path``) that loads
    only the registry's engine, models and migrations — never the embedding program's ``__main__``: the app
    starts the same from ``meshctx serve``, a script without a main guard, stdin or a notebook.
    """
    child = _children.pop(url, None)
    if child is None:
        if _at_head(url):
            return
        if not sys.executable:  # an embedded interpreter with no program to start: migrate here
            upgrade_database(url)
            return
        child = _spawn(url)
    _, errors = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(
            f"migrating the registry database to revision {HEAD_REVISION} failed (exit code {child.returncode}): "
            f"{errors.strip()[-2000:]}\nRun `meshctx db upgrade` to see it on its own."
        )


_children: dict[str, subprocess.Popen[str]] = {}


def _at_head(url: str) -> bool:
    engine = make_engine(url)
    try:
        return current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()


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
