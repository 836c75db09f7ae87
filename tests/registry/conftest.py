"""Registry fixtures: every test that takes ``db_url`` runs twice, on a fresh SQLite file and on a fresh
database in a real PostgreSQL server.

The server comes from ``$MESHCTX_TEST_POSTGRES_URL`` (a URL to an existing server whose user may CREATE
DATABASE), or is started here from ``initdb``/``pg_ctl`` in a temporary directory on a free loopback port
(as the ``postgres`` user when the tests run as root, since PostgreSQL refuses to run as root). Where
neither works, the PostgreSQL half is skipped with the reason, never silently.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import LocalPostgres
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from meshctx_service.registry import Registry, make_engine, upgrade_database

REPO = Path(__file__).resolve().parents[2]
PG_ENV = "MESHCTX_TEST_POSTGRES_URL"


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: this checkout's src/ and service/ first on the path."""
    env = dict(os.environ)
    paths = [str(REPO / "src"), str(REPO / "service"), str(Path(__file__).parent)]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    """A URL to a PostgreSQL server's maintenance database, or None (with a loud warning) if none can run."""
    given = os.environ.get(PG_ENV)
    if given:
        yield given
        return
    try:
        server = LocalPostgres()
    except Exception as err:  # any failure to start means: skip the PostgreSQL half, saying why
        reason = f"PostgreSQL tests SKIPPED: could not start a local server ({err}). Set {PG_ENV} to use one."
        warnings.warn(reason, stacklevel=1)
        print(f"\n!!! {reason}\n")
        yield None
        return
    try:
        yield server.url
    finally:
        server.stop()


def _fresh_postgres_database(admin_url: str) -> str:
    name = f"meshctx_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(admin_url: str, url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (schema not yet created) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    if admin_url is None:
        pytest.skip(f"PostgreSQL unavailable (see the warning above); set {PG_ENV} to run these tests")
    url = _fresh_postgres_database(admin_url)
    yield url
    _drop_postgres_database(admin_url, url)


@pytest.fixture
def registry(db_url: str) -> Iterator[Registry]:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        yield Registry(engine)
    finally:
        engine.dispose()
