"""The app embedded in someone else's program: a script without a main guard, run as a file and from stdin,
against a fresh SQLite database and one at an older schema revision. Start-up creates or migrates the schema;
that must neither run the script a second time nor need the script to be a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshctx_service.registry import default_database_url, upgrade_database
from meshctx_service.registry.engine import make_engine
from meshctx_service.registry.migrate import current_revision
from meshctx_service.registry.schema import HEAD_REVISION
from tests.support.env import REPO, checkout_env

#: No ``if __name__ == "__main__":`` on purpose: every line runs whenever the module is executed.
SCRIPT = """
from pathlib import Path

from fastapi.testclient import TestClient

from meshctx_service.app import create_app
from meshctx_service.settings import Settings

DATA = Path({data!r})
with (DATA.parent / "runs.log").open("a") as runs:
    runs.write("ran\\n")
with TestClient(create_app(Settings(data_dir=DATA))) as client:
    print("readyz", client.get("/readyz").json()["status"])
    print("clusters", client.get("/v1/clusters").status_code)
"""


def _run(tmp_path: Path, how: str, database: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    data = tmp_path / "data"
    if database == "older":  # migrated by a child interpreter at start-up
        upgrade_database(default_database_url(data), "0001")
    script = tmp_path / "embed.py"
    script.write_text(SCRIPT.format(data=str(data)))
    if how == "file":
        command, stdin = [sys.executable, str(script)], None
    else:
        command, stdin = [sys.executable, "-"], script.read_text()
    done = subprocess.run(
        command, input=stdin, cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=120
    )
    return done, data


@pytest.mark.parametrize("database", ["fresh", "older"])
@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_script_without_a_main_guard_starts_the_app_once(tmp_path: Path, how: str, database: str) -> None:
    done, data = _run(tmp_path, how, database)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["readyz ready", "clusters 200"], done.stdout + done.stderr
    assert (tmp_path / "runs.log").read_text() == "ran\n"  # the script ran once, not again in a child
    engine = make_engine(default_database_url(data))
    try:
        assert current_revision(engine) == HEAD_REVISION
    finally:
        engine.dispose()
    assert "Traceback" not in done.stderr


def test_a_failed_migration_names_the_cause(tmp_path: Path) -> None:
    """The child's error comes back in the exception, not only on a stderr the embedder may not see."""
    probe = f"""
import sqlite3, sys
sys.path[:0] = [{str(REPO / "service")!r}, {str(REPO / "src")!r}]
from meshctx_service.registry.schema import ensure_schema
path = {str(tmp_path / "broken.db")!r}
connection = sqlite3.connect(path)
connection.execute("CREATE TABLE clusters (unrelated INTEGER)")  # the first migration cannot create it
connection.commit()
connection.close()
try:
    ensure_schema("sqlite:///" + path)
except RuntimeError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-"], input=probe, env=checkout_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "migrating the registry database to revision" in done.stdout
    assert "clusters already exists" in done.stdout, done.stdout
    assert "meshctx db upgrade" in done.stdout
