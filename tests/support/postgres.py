"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` into a temporary directory, ``pg_ctl
start`` on a free loopback port, ``pg_ctl stop`` and delete. PostgreSQL refuses to run as root, so as root
the server runs as the ``postgres`` (or ``nobody``) user through ``runuser``.

``postgres_admin_url`` is the one session fixture every directory shares (one server per test run), from
``$MESHCTX_TEST_POSTGRES_URL`` (a server whose user may CREATE DATABASE) or started here; where neither works,
it is None after a loud warning and PostgreSQL tests skip with the reason, never silently. Each test (or
module) gets its own database on it: ``fresh_database``/``drop_database``, or ``database_url``."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ENV = "MESHCTX_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(candidates[0]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """A throwaway PostgreSQL cluster: initdb into a temp dir, pg_ctl start, pg_ctl stop, delete."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("initdb/pg_ctl not found on PATH or under /usr/lib/postgresql/*/bin")
        self.pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="meshctx-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if user is None:
                raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root and runuser is not available to drop privileges")
            shutil.chown(self.root, user=user)
            self.root.chmod(0o700)
            self.prefix = [runuser, "-u", user, "--"]
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", "meshctx", "-E", "UTF8", "--no-sync"], 120)
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            [pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "-t", "60", "start"], 90
        )
        self.url = f"postgresql+psycopg://meshctx@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str], timeout: float) -> None:
        done = subprocess.run(self.prefix + argv, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(argv[:1])} failed ({done.returncode}): {done.stderr.strip()} {tail}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop"], 60)
        shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


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


def fresh_database(admin_url: str) -> str:
    """A new, empty database on the server behind ``admin_url``; its URL."""
    name = f"meshctx_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def database_url(request: pytest.FixtureRequest, backend: str, directory: Path) -> Iterator[str]:
    """For a ``db_url``-style fixture of any scope: an empty database (schema not yet created) on ``backend``, a SQLite
    file in ``directory`` or a fresh PostgreSQL database (dropped afterwards; skipped when none can run)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'registry.db'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    if admin_url is None:
        pytest.skip(f"PostgreSQL unavailable (see the warning above); set {PG_ENV} to run these tests")
    url = fresh_database(admin_url)
    yield url
    drop_database(admin_url, url)
