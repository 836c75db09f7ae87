"""Database engines: an embedded SQLite file by default, PostgreSQL for several service replicas.

SQLite runs in WAL mode (readers never block the writer), with foreign keys on, ``synchronous=FULL`` (an
acknowledged write survives a crash of the process *and* of the machine) and a busy timeout, so concurrent
writers from several processes queue instead of failing. Python's sqlite3 module is told to keep its hands
off transactions (``isolation_level=None``) so that we can issue ``BEGIN IMMEDIATE`` for writes: see
``transactions.py`` for why.

SQLAlchemy loads when the first engine is made, not with this module: start-up reads a SQLite file's schema
revision with the standard library alone (``schema.py``).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

DEFAULT_FILENAME = "meshctx.db"
BUSY_TIMEOUT_S = 30.0
#: Execution option read by the ``begin`` hook: the SQLite transaction mode for that connection.
SQLITE_BEGIN = "meshctx_sqlite_begin"


def default_database_url(data_dir: str | Path) -> str:
    """``sqlite:///<data_dir>/meshctx.db`` (the directory is created)."""
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / DEFAULT_FILENAME}"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://user@host/db``)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "The registry needs a SQLite file (sqlite:///path/to/meshctx.db); an in-memory database would "
                "lose every registration on restart."
            )
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": BUSY_TIMEOUT_S, "isolation_level": None})
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise ValueError(
        f"Unsupported database URL scheme {parsed.drivername!r}; use sqlite:///path/to/meshctx.db or "
        f"postgresql+psycopg://user:password@host:5432/dbname."
    )


def use_wal(cursor: Any) -> None:
    """WAL mode, which the file keeps once set. Switching needs the database to itself, and SQLite answers
    "database is locked" at once (no busy handler) while another connection — say a replica migrating the same
    fresh file — holds it; so the switch is only asked for when the file is not in WAL yet, and retried until
    ``BUSY_TIMEOUT_S``."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _configure_sqlite(engine: Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        use_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
