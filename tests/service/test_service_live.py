"""The service as a real uvicorn server on a loopback port, exercised through ``meshctx.client``."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from meshctx.client import AsyncMeshctxClient, MeshctxClient, ProblemError, RetryPolicy, ServiceUnreachable
from meshctx.config import ParallelismSizes
from meshctx.plan import ClusterShape
from meshctx.plan.request import TopologyRequest
from meshctx_service.registry import default_database_url, upgrade_database
from tests.support.servers import LiveServer, free_port, imported_modules, start_server, wait_ready

REQUEST = TopologyRequest(
    sizes=ParallelismSizes(tp_size=4, pp_size=2, ep_size=4),
    nnodes=4,
    nproc_per_node=8,
    cluster=ClusterShape(gpus_per_node=8),
)
INVALID = TopologyRequest(sizes=ParallelismSizes(tp_size=5), world_size=64)


def test_sync_client_against_live_server(live_server: LiveServer) -> None:
    with MeshctxClient(live_server.url) as client:
        assert client.ready()
        assert client.validate(REQUEST) == REQUEST.validate().to_dict()
        assert client.validate(INVALID.to_dict()) == INVALID.validate().to_dict()
        plan = REQUEST.validate().raise_for_problems()
        assert client.layout(REQUEST) == plan.to_dict()
        assert client.layout(REQUEST, groups=True)["groups"] == plan.to_dict(groups=True)["groups"]
        assert client.layout(REQUEST, rank=17) == plan.rank_view(17)
        assert client.layout(INVALID)["valid"] is False
        with pytest.raises(ProblemError) as refused:
            client.layout(REQUEST, rank=32)
        assert refused.value.status == 422 and refused.value.errors[0]["field"] == "rank"
        with pytest.raises(ProblemError) as malformed:
            client.validate({"strategy": "fsdp2", "world_size": 8, "tp_size": 2})
        assert malformed.value.errors == [{"field": "tp_size", "detail": "unknown field"}]


def test_async_client_against_live_server(live_server: LiveServer) -> None:
    async def run() -> list[dict[str, object]]:
        async with AsyncMeshctxClient(live_server.url) as client:
            assert await client.ready()
            return list(await asyncio.gather(*(client.validate(REQUEST) for _ in range(8)), client.layout(REQUEST)))

    *reports, layout = asyncio.run(run())
    assert all(r == REQUEST.validate().to_dict() for r in reports)
    assert layout == REQUEST.validate().raise_for_problems().to_dict()


def test_closed_port_fails_fast_then_retries_until_it_opens(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(ServiceUnreachable), MeshctxClient(url, retry=RetryPolicy(retries=2, backoff=0.01)) as client:
        client.validate(REQUEST)
    assert time.monotonic() - started < 2.0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # still closed: the next call starts against nothing
    server = start_server(tmp_path, port=port, wait=False)
    try:
        retry = RetryPolicy(retries=60, backoff=0.05, max_backoff=0.5)  # bounded: at most ~30 s
        with MeshctxClient(url, retry=retry) as client:
            assert client.validate(REQUEST) == REQUEST.validate().to_dict()
    finally:
        server.stop()


def test_503_is_retried_with_backoff_and_surfaces_when_it_persists(tmp_path: Path) -> None:
    port = free_port()
    args = ("-m", "uvicorn", "--factory", "flaky_front:create", "--app-dir", str(Path(__file__).parent))
    server = start_server(tmp_path, port=port, args=(*args, "--port", str(port)), wait=False)
    try:
        wait_ready(server)
        arm = f"{server.url}/flaky/arm"
        httpx.post(arm, params={"n": 2})
        with MeshctxClient(server.url, retry=RetryPolicy(retries=3, backoff=0.01)) as client:
            assert client.validate(REQUEST)["valid"] is True
        assert httpx.get(f"{server.url}/flaky/stats").json() == {"served_503": 2}

        httpx.post(arm, params={"n": 5})
        with pytest.raises(ProblemError) as gave_up, MeshctxClient(server.url, retry=RetryPolicy(retries=2)) as client:
            client.validate(REQUEST)
        assert gave_up.value.status == 503
        assert httpx.get(f"{server.url}/flaky/stats").json() == {"served_503": 3}  # 1 try + 2 retries

        httpx.post(arm, params={"n": 1})

        async def run() -> dict[str, object]:
            async with AsyncMeshctxClient(server.url, retry=RetryPolicy(retries=1, backoff=0.01)) as client:
                return await client.layout(REQUEST, rank=0)

        assert asyncio.run(run())["rank"] == 0
    finally:
        server.stop()


def test_served_process_never_imports_torch_and_logs_json(tmp_path: Path) -> None:
    # A registry already at the newest schema: start-up checks its revision with sqlite3 alone.
    upgrade_database(default_database_url(tmp_path / "data"))
    server = start_server(tmp_path, MESHCTX_DATA_DIR=str(tmp_path / "data"))
    try:
        with MeshctxClient(server.url) as client:
            client.validate(REQUEST)
            client.layout(REQUEST, rank=3)
            client.validate(INVALID)
        httpx.get(f"{server.url}/metrics")
        httpx.get(f"{server.url}/missing")
    finally:
        output = server.stop()
    modules = imported_modules(output)
    assert {"fastapi", "uvicorn", "meshctx", "meshctx_service"} <= modules  # the trace is complete
    assert "torch" not in modules
    # No registry request: the registry never opened, so SQLAlchemy never loaded (registry/lazy.py).
    assert "sqlalchemy" not in modules and "alembic" not in modules
    access = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    routes = [(a["method"], a["route"], a["status"]) for a in access if a["logger"] == "meshctx.access"]
    assert ("POST", "/v1/validate", 200) in routes and ("GET", "unmatched", 404) in routes
    assert "Traceback" not in output
