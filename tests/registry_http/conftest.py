"""Registry routes through real uvicorn servers (``tests/support/servers.py``) on each backend.

``server`` is one server per backend per module: the tests that share it keep to their own job and cluster
names or their own tenants (``TOKENS``), so none needs a fresh server. Tests that crash a server, run
replicas or change its settings start their own with ``serve``, on ``db_url`` (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.postgres import BACKENDS, database_url
from tests.support.servers import LiveServer, start_server

#: token -> (tenant, role); the token file the servers read. team-c and team-d belong to tests that share a
#: module's server with a team-a test and must not see its jobs.
TOKENS = {
    "admin-a-0123456789": ("team-a", "admin"),
    "writer-a-0123456789": ("team-a", "write"),
    "reader-a-0123456789": ("team-a", "read"),
    "writer-b-0123456789": ("team-b", "write"),
    "writer-c-0123456789": ("team-c", "write"),
    "reader-c-0123456789": ("team-c", "read"),
    "writer-d-0123456789": ("team-d", "write"),
}


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.yaml"
    path.write_text("".join(f"{t}: {{tenant: {tenant}, role: {role}}}\n" for t, (tenant, role) in TOKENS.items()))
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (schema not yet created) on each backend, for this test alone."""
    with database_url(request, request.param, tmp_path) as url:
        yield url


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


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tokens_file: Path
) -> Iterator[LiveServer]:
    """One server with the test tokens on a fresh database of each backend, shared by the module's tests."""
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    with database_url(request, request.param, tmp) as url:
        live = start_server(
            tmp, MESHCTX_ACCESS_LOG="false", MESHCTX_DATABASE_URL=url, MESHCTX_TOKENS_FILE=str(tokens_file)
        )
        try:
            yield live
        finally:
            live.stop()
