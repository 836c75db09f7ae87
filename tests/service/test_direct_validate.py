"""``POST /v1/validate``'s direct path (``http/fast_paths.py``) answers exactly as the FastAPI route.

The same requests go to a default server (validate open: the direct path answers) and to one with validate
closed behind a token (the FastAPI route answers, its token check passed), both real uvicorn servers on
loopback with a small body limit and a work deadline no heavy request can meet: status, content type,
``Retry-After`` and every byte of the body must agree, verdicts and refusals alike. The direct path's requests
are observed as the route's (metrics and access log).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import LiveServer, start_server

TOKEN = {"Authorization": "Bearer reader-0123456789"}
LIMITS = {"MESHCTX_MAX_BODY_BYTES": "2048", "MESHCTX_WORK_DEADLINE_S": "0.000001"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    tmp = tmp_path_factory.mktemp("direct")
    tokens = json.dumps({"reader-0123456789": {"tenant": "acme", "role": "read"}})
    direct = start_server(tmp, **LIMITS)
    routed = start_server(tmp, MESHCTX_TOKENS=tokens, MESHCTX_OPEN_VALIDATE="false", **LIMITS)
    yield direct, routed
    direct.stop()
    routed.stop()


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


def _chunked(data: bytes) -> Iterator[bytes]:
    """A body sent without a Content-Length (chunked), so only the streamed count can refuse it."""
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


FSDP = {"strategy": "fsdp2", "sizes": {"tp_size": 8, "pp_size": 4, "ep_size": 8}}
CASES: list[tuple[str, bytes | None]] = [
    ("valid", _json({**FSDP, "world_size": 131072, "cluster": {"gpus_per_node": 8}})),
    ("valid with warnings", _json({"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 16}})),
    ("invalid, suggestions", _json({"strategy": "fsdp2", "world_size": 96, "sizes": {"tp_size": 7}})),
    ("elastic range", _json({**FSDP, "nnodes": "4:8", "nproc_per_node": 8})),
    ("unknown strategy", _json({"strategy": "zero9", "world_size": 8})),
    ("world over the limit", _json({"strategy": "fsdp2", "world_size": 1 << 40})),
    ("heavy: past the work deadline", _json({**FSDP, "nnodes": "1:512", "nproc_per_node": 8})),
    ("bad JSON", b'{"strategy": "fsdp2", '),
    ("not UTF-8", b"\xff\xfe"),
    ("unknown field", _json({"strategy": "fsdp2", "world_size": 8, "tp": 8})),
    ("a string for an integer", _json({"strategy": "fsdp2", "world_size": "8"})),
    ("empty body", b""),
    ("declared too large", _json({"strategy": "fsdp2", "world_size": 8, "ranks": list(range(1000))})),
    ("streamed too large", None),
]


def _post(server: LiveServer, body: bytes | None, headers: dict[str, str]) -> httpx.Response:
    content = body if body is not None else _chunked(_json({"strategy": "fsdp2", "ranks": list(range(2000))}))
    return httpx.post(f"{server.url}/v1/validate", content=content, headers=headers, timeout=30.0)


def test_the_direct_path_answers_as_the_route(servers: tuple[LiveServer, LiveServer]) -> None:
    direct, routed = servers
    statuses = {}
    for name, body in CASES:
        ours = _post(direct, body, {"content-type": "application/json"})
        theirs = _post(routed, body, {"content-type": "application/json", **TOKEN})
        statuses[name] = ours.status_code
        assert ours.status_code == theirs.status_code, (name, ours.text[:300], theirs.text[:300])
        for header in ("content-type", "retry-after"):
            assert ours.headers.get(header) == theirs.headers.get(header), (name, header)
        assert ours.content == theirs.content, name
    # The cases reach every kind of answer the route has.
    assert statuses["valid"] == statuses["invalid, suggestions"] == statuses["elastic range"] == 200
    assert statuses["bad JSON"] == statuses["world over the limit"] == 422
    assert statuses["declared too large"] == statuses["streamed too large"] == 413
    assert statuses["heavy: past the work deadline"] == 503


def test_other_methods_and_paths_go_to_the_router(servers: tuple[LiveServer, LiveServer]) -> None:
    direct, routed = servers
    for method, path in (("GET", "/v1/validate"), ("PUT", "/v1/validate"), ("POST", "/v1/validate/")):
        ours = httpx.request(method, direct.url + path, content=b"{}", timeout=10.0)
        theirs = httpx.request(method, routed.url + path, content=b"{}", headers=TOKEN, timeout=10.0)
        assert ours.status_code == theirs.status_code and ours.status_code in (307, 405), (method, path)
        assert ours.content == theirs.content, (method, path)
    with_query = httpx.post(direct.url + "/v1/validate?pretty=1", json={"strategy": "fsdp2", "world_size": 8})
    assert with_query.status_code == 200 and with_query.json()["valid"]
    # A body in chunks (no Content-Length) is read whole, as the route reads it.
    body = _json({**FSDP, "world_size": 4096, "ranks": list(range(0, 4096, 16))})
    chunked = httpx.post(direct.url + "/v1/validate", content=_chunked(body), timeout=30.0)
    assert chunked.status_code == 200 and chunked.content == _post(routed, body, TOKEN).content


def test_direct_requests_are_observed_as_the_route(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        for world in (8, 16, 7):
            httpx.post(
                server.url + "/v1/validate", json={"strategy": "fsdp2", "world_size": world, "sizes": {"tp_size": 2}}
            )
        httpx.post(server.url + "/v1/validate", content=b"{")
        metrics = httpx.get(server.url + "/metrics").text
    finally:
        log = server.stop()
    counted = {
        status: float(value)
        for status, value in re.findall(
            r'meshctx_http_requests_total\{method="POST",route="/v1/validate",status="(\d+)"\} (\S+)', metrics
        )
    }
    assert counted == {"200": 3.0, "422": 1.0}
    assert re.search(r'meshctx_validations_total\{endpoint="validate",result="valid"\} 2\.0', metrics)
    assert re.search(r'meshctx_validations_total\{endpoint="validate",result="invalid"\} 1\.0', metrics)
    lines = [json.loads(line) for line in log.splitlines() if '"logger":"meshctx.access"' in line]
    validated = [line for line in lines if line["path"] == "/v1/validate"]
    assert [line["status"] for line in validated] == [200, 200, 200, 422]
    assert {line["route"] for line in validated} == {"/v1/validate"}


def test_an_unexpected_error_is_the_same_logged_500(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from meshctx_service.app import create_app
    from meshctx_service.settings import Settings
    from meshctx_service.topology import routes

    async def broken(state: object, body: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(routes, "answer_validate", broken)
    tokens = json.dumps({"reader-0123456789": {"tenant": "acme", "role": "read"}})
    answers = []
    for settings, headers in (
        (Settings(data_dir=tmp_path / "open"), {}),
        (Settings(data_dir=tmp_path / "closed", tokens=tokens, open_validate=False), TOKEN),
    ):
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            answers.append(client.post("/v1/validate", json={"strategy": "fsdp2", "world_size": 8}, headers=headers))
    assert [a.status_code for a in answers] == [500, 500]
    assert answers[0].content == answers[1].content and answers[0].json()["detail"].startswith("Internal error")
