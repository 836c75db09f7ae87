"""Registry routes through real uvicorn servers: fixtures for a database on each backend (the registry
suite's, reused), a token file, and servers started by ``tests/service/service_harness.py``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "service"), str(TESTS / "registry")]

from service_harness import LiveServer, start_server  # noqa: E402


def _load_registry_fixtures() -> object:
    spec = importlib.util.spec_from_file_location("registry_conftest", TESTS / "registry" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_registry = _load_registry_fixtures()
postgres_admin_url = _registry.postgres_admin_url  # type: ignore[attr-defined]
db_url = _registry.db_url  # type: ignore[attr-defined]

#: token -> (tenant, role); the token file the servers read.
TOKENS = {
    "admin-a": ("team-a", "admin"),
    "writer-a": ("team-a", "write"),
    "reader-a": ("team-a", "read"),
    "writer-b": ("team-b", "write"),
}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text("".join(f"{t}: {{tenant: {tenant}, role: {role}}}\n" for t, (tenant, role) in TOKENS.items()))
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """``serve(**env)`` starts a server (``MESHCTX_*`` settings as keyword arguments); all are stopped after."""
    started: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        server = start_server(tmp_path, MESHCTX_ACCESS_LOG="false", **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(serve: Callable[..., LiveServer], db_url: str, tokens_file: Path) -> LiveServer:
    """One server with the test tokens on a fresh database of each backend."""
    return serve(MESHCTX_DATABASE_URL=db_url, MESHCTX_TOKENS_FILE=str(tokens_file))
