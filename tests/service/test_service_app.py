"""The service in-process (starlette TestClient, and the async client over httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from meshctx.client import AsyncMeshctxClient, ProblemError
from meshctx.config import ParallelismSizes
from meshctx.plan.request import TopologyRequest
from meshctx_service.app import create_app
from meshctx_service.settings import Settings
from tests.support.servers import REPO, service_env

BIG = {"strategy": "fsdp2", "world_size": 131072, "sizes": {"tp_size": 8, "pp_size": 4, "ep_size": 8}}


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(max_listed_world_size=4096))) as test_client:
        yield test_client


def local(body: dict[str, Any]) -> TopologyRequest:
    sizes = ParallelismSizes(**body.get("sizes", {}))
    return TopologyRequest(strategy=body["strategy"], sizes=sizes, world_size=body.get("world_size"))


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert "Traceback" not in response.text
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


def test_validate_answers_what_the_library_answers(client: TestClient) -> None:
    for body in (BIG, {"strategy": "megatron_fsdp", "world_size": 64, "sizes": {"tp_size": 4, "cp_size": 2}}):
        response = client.post("/v1/validate", json=body)
        assert response.status_code == 200
        assert response.json() == local(body).validate().to_dict()


def test_invalid_topology_is_a_200_with_every_problem_and_suggestions(client: TestClient) -> None:
    body = {"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 3, "dp_replicate_size": 0}}
    report = client.post("/v1/validate", json=body).json()
    assert report["valid"] is False and report["plan"] is None
    assert {p["code"] for p in report["problems"]} == {"invalid_size", "world_size_not_divisible"}
    body = {"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 3}}
    report = client.post("/v1/validate", json=body).json()
    assert [p["code"] for p in report["problems"]] == ["world_size_not_divisible"]
    assert report["suggestions"] and all(64 % s["sizes"]["tp_size"] == 0 for s in report["suggestions"])


def test_elastic_range_and_cluster_and_model_reach_the_planner(client: TestClient) -> None:
    body = {
        "strategy": "fsdp2",
        "nnodes": "2:4",
        "nproc_per_node": 8,
        "sizes": {"tp_size": 16},
        "cluster": {"gpus_per_node": 8, "nvlink_domain": None},
        "model": {"num_attention_heads": 12},
    }
    report = client.post("/v1/validate", json=body).json()
    assert [w["world_size"] for w in report["world_sizes"]] == [16, 24, 32]
    assert {"elastic_range_invalid", "heads_not_divisible"} <= {p["code"] for p in report["problems"]}


def test_large_world_is_compact(client: TestClient) -> None:
    response = client.post("/v1/validate", json=BIG)
    assert response.status_code == 200 and len(response.content) < 4000
    plan = response.json()["plan"]
    assert plan["world_size"] == 131072 and "groups" not in plan
    view = client.post("/v1/layout", params={"rank": 131071}, json=BIG).json()
    assert view == local(BIG).validate().raise_for_problems().rank_view(131071)


def test_layout_compact_groups_rank_and_invalid(client: TestClient) -> None:
    body = {"strategy": "fsdp2", "world_size": 16, "sizes": {"tp_size": 2, "dp_replicate_size": 2}}
    plan = local(body).validate().raise_for_problems()
    assert client.post("/v1/layout", json=body).json() == plan.to_dict()
    with_groups = client.post("/v1/layout", params={"groups": "true"}, json=body).json()
    assert with_groups["groups"]["tp"] == plan.groups("tp") == [[2 * i, 2 * i + 1] for i in range(8)]
    view = client.post("/v1/layout", params={"rank": 5}, json=body).json()
    assert view["rank"] == 5 and view["groups"]["tp"] == [4, 5] and view["coordinates"]["dp_shard"] == 2
    invalid = client.post("/v1/layout", json={"strategy": "fsdp2", "world_size": 16, "sizes": {"tp_size": 3}})
    assert invalid.status_code == 200 and invalid.json()["valid"] is False
    outside = problem(client.post("/v1/layout", params={"rank": 16}, json=body), 422)
    assert outside["errors"] == [{"field": "rank", "detail": "rank 16 is outside this mesh of 16 ranks (0..15)"}]
    too_many = problem(client.post("/v1/layout", params={"groups": "true"}, json={**BIG}), 422)
    assert fields(too_many) == {"groups"} and "rank=N" in too_many["errors"][0]["detail"]


def test_malformed_requests_are_422_problems_naming_each_field(client: TestClient) -> None:
    unknown = {"strategy": "fsdp2", "world_size": 8, "sizes": {"tp_size": 2, "tp": 2}, "gpus": 8}
    body = problem(client.post("/v1/validate", json=unknown), 422)
    assert body["errors"] == [
        {"field": "sizes.tp", "detail": "unknown field"},
        {"field": "gpus", "detail": "unknown field"},
    ]
    wrong_types = {"strategy": "fsdp2", "world_size": True, "sizes": {"tp_size": "8"}, "ranks": [0, 1.5]}
    assert fields(problem(client.post("/v1/validate", json=wrong_types), 422)) == {
        "world_size",
        "sizes.tp_size",
        "ranks[1]",
    }
    defaulted = client.post("/v1/validate", json={"world_size": 8})  # strategy defaults to fsdp2, as in the CLI
    assert defaulted.status_code == 200 and defaulted.json()["plan"]["strategy"] == "fsdp2"
    assert fields(problem(client.post("/v1/validate", json={"strategy": "fsdp2"}), 422)) == {"world_size"}
    no_procs = {"strategy": "fsdp2", "nnodes": "2:4"}
    assert fields(problem(client.post("/v1/layout", json=no_procs), 422)) == {"nproc_per_node"}
    assert fields(problem(client.post("/v1/validate", json={"strategy": "ddp", "nnodes": "two"}), 422)) >= {"nnodes"}
    broken = client.post("/v1/validate", content=b'{"strategy": ', headers={"content-type": "application/json"})
    body = problem(broken, 422)
    assert body["errors"][0]["field"] == "body" and body["errors"][0]["detail"].startswith("invalid JSON")


def test_requests_beyond_the_service_limits_are_refused_by_field(client: TestClient) -> None:
    huge = problem(client.post("/v1/validate", json={"strategy": "fsdp2", "world_size": 1 << 30}), 422)
    assert fields(huge) == {"world_size"}
    wide = {"strategy": "fsdp2", "nnodes": "1:5000", "nproc_per_node": 8}
    assert fields(problem(client.post("/v1/validate", json=wide), 422)) == {"nnodes"}


def test_body_limit_is_a_413_problem_with_or_without_content_length() -> None:
    with TestClient(create_app(Settings(max_body_bytes=256))) as client:
        body = {"strategy": "fsdp2", "ranks": list(range(200))}
        assert "256 bytes" in problem(client.post("/v1/validate", json=body), 413)["detail"]

        def chunks() -> Iterator[bytes]:
            yield b'{"strategy": "fsdp2", "ranks": ['
            yield b"0, " * 200 + b"0]}"

        problem(client.post("/v1/validate", content=chunks(), headers={"content-type": "application/json"}), 413)
        assert client.post("/v1/validate", json={"strategy": "fsdp2", "world_size": 8}).status_code == 200


def test_unknown_routes_wrong_methods_and_crashes_are_problems() -> None:
    app = create_app()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert problem(client.get("/v2/validate"), 404)["instance"] == "/v2/validate"
        wrong = client.get("/v1/validate")
        problem(wrong, 405)
        assert wrong.headers["allow"] == "POST"
        crash = problem(client.get("/boom"), 500)
        assert "secret" not in json.dumps(crash)


def test_readiness_waits_for_startup() -> None:
    app = create_app()

    async def before_startup() -> int:
        transport = httpx.ASGITransport(app=app)  # no lifespan: start-up has not run
        async with httpx.AsyncClient(transport=transport, base_url="http://meshctx") as raw:
            return (await raw.get("/readyz")).status_code

    assert asyncio.run(before_startup()) == 503
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/livez").json() == {"status": "ok"}


def test_metrics_count_requests_validations_and_problem_codes(client: TestClient) -> None:
    first = client.post("/v1/validate", json={"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 3}})
    # The same request spelled differently: answered identically, and counted again.
    again = client.post("/v1/validate", content=b'{"sizes":{"tp_size":3},  "world_size":64,"strategy":"fsdp2"}')
    assert again.content == first.content and again.headers["content-type"] == "application/json"
    client.post("/v1/validate", json=BIG)
    client.post("/v1/layout", json=BIG)
    client.get("/nowhere")
    text = client.get("/metrics").text
    for line in (
        'meshctx_validations_total{endpoint="validate",result="invalid"} 2.0',
        'meshctx_validations_total{endpoint="validate",result="valid"} 1.0',
        'meshctx_validations_total{endpoint="layout",result="valid"} 1.0',
        'meshctx_validation_problems_total{code="world_size_not_divisible",severity="error"} 2.0',
        'meshctx_http_requests_total{method="POST",route="/v1/validate",status="200"} 3.0',
        'meshctx_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
    ):
        assert line in text, line
    assert 'meshctx_http_request_duration_seconds_count{method="POST",route="/v1/layout"} 1.0' in text


def test_validate_memo_keeps_short_bodies_and_short_answers(client: TestClient) -> None:
    answers = client.app.state.answers  # type: ignore[attr-defined]
    plain = json.dumps({"strategy": "fsdp2", "world_size": 8, "sizes": {"tp_size": 2}}).encode()
    first = client.post("/v1/validate", content=plain)
    # Observed through what is shared, not through the memo's own counters: identical bodies share one answer.
    kept = answers.get(plain)
    assert kept is not None and kept.body == first.content
    assert client.post("/v1/validate", content=plain).content == first.content and answers.get(plain) is kept
    # A body listing many ranks is answered afresh each time (equal bytes) and not kept.
    subset = json.dumps({"strategy": "fsdp2", "world_size": 1024, "ranks": list(range(1024))}).encode()
    assert len(subset) > answers.BODY_BYTES
    twice = [client.post("/v1/validate", content=subset) for _ in range(2)]
    assert twice[0].content == twice[1].content and twice[0].json()["valid"] and answers.get(subset) is None
    # An answer too long to keep (an elastic range's report of every node count) is not kept either.
    elastic = json.dumps({"strategy": "fsdp2", "sizes": {"tp_size": 3}, "nnodes": "1:512", "nproc_per_node": 8})
    long_answers = [client.post("/v1/validate", content=elastic.encode()) for _ in range(2)]
    assert len(long_answers[0].content) > answers.ANSWER_BYTES and answers.get(elastic.encode()) is None
    assert long_answers[0].content == long_answers[1].content
    # Bounded: however many distinct bodies, at most two generations are kept, and the newest always.
    bodies = [json.dumps({"strategy": "fsdp2", "world_size": w}).encode() for w in range(1, 3 * answers.GENERATION)]
    for body in bodies:
        client.post("/v1/validate", content=body)
    assert all(answers.get(body) is None for body in bodies[: answers.GENERATION // 2])  # the oldest are gone
    assert client.post("/v1/validate", content=bodies[-1]).content == answers.get(bodies[-1]).body


def test_access_log_is_structured(client: TestClient, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    client.post("/v1/validate", json={"strategy": "fsdp2", "world_size": 8})
    client.app.state.access_log.sync()  # type: ignore[attr-defined]  # lines are batched, written by a thread
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    (entry,) = [e for e in lines if e["logger"] == "meshctx.access"]
    assert entry["method"] == "POST" and entry["route"] == "/v1/validate" and entry["status"] == 200
    assert entry["duration_ms"] > 0 and entry["level"] == "info" and entry["ts"].endswith("Z")


def test_openapi_has_examples_and_problem_json(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/validate"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert {"fsdp2_tp_pp", "elastic_nodes", "invalid", "moe"} <= set(examples)
    for example in examples.values():  # every documented example is a valid request
        assert client.post("/v1/validate", json=example["value"]).status_code == 200
    assert set(operation["responses"]["422"]["content"]) == {"application/problem+json"}
    assert "swagger" in client.get("/docs").text.lower()


def test_settings_come_from_meshctx_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHCTX_MAX_BODY_BYTES", "64")
    monkeypatch.setenv("MESHCTX_WORKERS", "3")
    settings = Settings()
    assert settings.max_body_bytes == 64 and settings.workers == 3
    with TestClient(create_app(settings)) as client:
        problem(client.post("/v1/validate", json={"strategy": "fsdp2", "ranks": list(range(40))}), 413)


def test_async_client_in_process() -> None:
    request = TopologyRequest(sizes=ParallelismSizes(tp_size=8, pp_size=2), world_size=64)

    async def run() -> tuple[dict[str, Any], dict[str, Any], ProblemError]:
        app = create_app()
        async with app.router.lifespan_context(app):
            client = AsyncMeshctxClient("http://meshctx", transport=httpx.ASGITransport(app=app))
            async with client:
                report = await client.validate(request)
                view = await client.layout(request, rank=63)
                try:
                    await client.layout(request, rank=64)
                except ProblemError as error:
                    return report, view, error
        raise AssertionError("rank 64 was accepted")

    report, view, error = asyncio.run(run())
    assert report == request.validate().to_dict()
    assert view == request.validate().raise_for_problems().rank_view(63)
    assert error.status == 422 and error.errors[0]["field"] == "rank"


def test_app_never_imports_torch() -> None:
    script = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from meshctx_service.app import create_app\n"
        "with TestClient(create_app()) as c:\n"
        "    assert c.post('/v1/validate', json={'strategy': 'fsdp2', 'world_size': 64}).status_code == 200\n"
        "    assert c.post('/v1/layout?rank=3', json={'strategy': 'fsdp2', 'world_size': 64}).status_code == 200\n"
        "    c.get('/metrics'); c.get('/openapi.json')\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=service_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
