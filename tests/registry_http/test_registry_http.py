"""The registry over HTTP, end to end: a real uvicorn server on SQLite and on PostgreSQL, driven by
``meshctx.client`` (raw httpx where a header is the point)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from meshctx.client import MeshctxClient, ProblemError
from meshctx.config import ParallelismSizes
from meshctx.plan import plan_mesh
from meshctx.plan.request import TopologyRequest
from tests.support.servers import LiveServer

PROBLEM_JSON = "application/problem+json"


def fsdp2(world_size: int, tp: int = 1) -> TopologyRequest:
    return TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=tp), world_size=world_size)


def refused(call: Callable[[], object]) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        call()
    return caught.value


def test_jobs_and_clusters_lifecycle(server: LiveServer) -> None:
    with (
        MeshctxClient(server.url, token="admin-a-0123456789") as admin,
        MeshctxClient(server.url, token="writer-a-0123456789") as client,
    ):
        assert admin.put_cluster("pool", nodes=4, gpus_per_node=8)["gpus"] == 32
        raw = httpx.put(
            f"{server.url}/v1/clusters/pool",
            json={"nodes": 4, "gpus_per_node": 8},
            headers={"Authorization": "Bearer admin-a-0123456789"},
        )
        assert raw.status_code == 200  # the same shape again: replaced, not created

        created = httpx.put(
            f"{server.url}/v1/jobs/llm-1",
            json={"request": fsdp2(16, tp=4).to_dict(), "cluster": "pool", "labels": {"team": "llm"}},
            headers={"Authorization": "Bearer writer-a-0123456789"},
        )
        assert created.status_code == 201
        job = created.json()
        assert created.headers["etag"] == job["etag"]
        # The stored plan is the planner's: same fingerprint as planning the request locally.
        local = plan_mesh("fsdp2", ParallelismSizes(tp_size=4), world_size=16)
        assert job["fingerprint"] == local.fingerprint() and job["plan"]["sizes"]["dp_shard"] == 4
        assert job["state"] == "registered" and job["gpus"] == 16 and job["cluster"] == "pool"

        again = client.register_job("llm-1", fsdp2(16, tp=4), cluster="pool", labels={"team": "llm"})
        assert again["etag"] == job["etag"] and again["version"] == 1  # idempotent PUT

        changed = refused(lambda: client.register_job("llm-1", fsdp2(16, tp=2), cluster="pool"))
        assert changed.status == 409 and changed.problem["code"] == "job_exists"
        assert changed.problem["etag"] == job["etag"]
        replaced = client.register_job("llm-1", fsdp2(16, tp=2), cluster="pool", if_match=job["etag"])
        assert replaced["plan"]["sizes"]["tp"] == 2 and replaced["etag"] != job["etag"]
        stale = refused(lambda: client.register_job("llm-1", fsdp2(8), cluster="pool", if_match=job["etag"]))
        assert stale.status == 412 and stale.problem["etag"] == replaced["etag"]

        # Capacity: 16 of 32 GPUs held; 24 more do not fit, and the answer says by how much.
        full = refused(lambda: client.register_job("llm-2", fsdp2(24), cluster="pool"))
        assert full.status == 409 and full.problem["code"] == "capacity_exceeded"
        assert (full.problem["capacity"], full.problem["held"], full.problem["requested"]) == (32, 16, 24)
        assert full.problem["available"] == 16
        for number in range(2):
            client.register_job(f"small-{number}", fsdp2(8), cluster="pool", labels={"team": "infra"})

        # An invalid topology: 422 with the planner's problems and a fix; nothing stored.
        invalid = httpx.put(
            f"{server.url}/v1/jobs/bad",
            json={"request": fsdp2(16, tp=3).to_dict()},
            headers={"Authorization": "Bearer writer-a-0123456789"},
        )
        assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM_JSON
        problems = invalid.json()["problems"]
        assert [p["code"] for p in problems] == ["world_size_not_divisible"] and problems[0]["hint"]
        assert refused(lambda: client.get_job("bad")).status == 404
        malformed = refused(lambda: client.register_job("bad", {"strategy": "fsdp2"}))
        assert malformed.status == 422 and malformed.errors[0]["field"] == "request.world_size"

        # Listing: filters and cursor pages.
        assert [j["job_id"] for j in client.list_jobs(labels={"team": "infra"})["items"]] == ["small-0", "small-1"]
        assert [j["job_id"] for j in client.list_jobs(cluster="pool", state="registered")["items"]] == [
            "llm-1",
            "small-0",
            "small-1",
        ]
        first = client.list_jobs(limit=2)
        assert len(first["items"]) == 2 and first["next_cursor"]
        rest = client.list_jobs(limit=2, cursor=first["next_cursor"])
        assert [j["job_id"] for j in first["items"] + rest["items"]] == ["llm-1", "small-0", "small-1"]
        assert rest["next_cursor"] is None
        bad_label = refused(lambda: httpx_get(server, "/v1/jobs?label=nokey", "reader-a-0123456789"))
        assert bad_label.status == 422

        # Attestation: a mismatch is a 409 with both fingerprints, and recorded; a match makes it running.
        mismatch = refused(lambda: client.attest("llm-1", local.fingerprint()))  # llm-1 is tp 2 now
        assert mismatch.status == 409 and mismatch.problem["code"] == "fingerprint_mismatch"
        assert mismatch.problem["expected"] == replaced["fingerprint"]
        assert mismatch.problem["reported"] == local.fingerprint()
        assert client.get_job("llm-1")["state"] == "registered"
        assert client.attest("llm-1", replaced["fingerprint"])["matched"] is True
        assert client.get_job("llm-1")["state"] == "running"
        assert [a["matched"] for a in client.attestations("llm-1")] == [False, True]

        # States: running → finished frees the GPUs; finished is final.
        finished = client.set_state("llm-1", "finished")
        assert finished["state"] == "finished"
        illegal = refused(lambda: client.set_state("llm-1", "running"))
        assert illegal.status == 409 and illegal.problem["allowed"] == []
        client.register_job("llm-2", fsdp2(16), cluster="pool")  # fits now: 8 + 8 + 16 = 32

        # Deleting: If-Match guards it; a cluster with active jobs cannot be deleted.
        current = client.get_job("small-0")["etag"]
        assert refused(lambda: client.delete_job("small-0", if_match='"0-stale"')).status == 412
        client.delete_job("small-0", if_match=current)
        assert refused(lambda: client.get_job("small-0")).status == 404
        in_use = refused(lambda: admin.delete_cluster("pool"))
        assert in_use.status == 409 and in_use.problem["code"] == "cluster_in_use"
        for job_id in ("small-1", "llm-2"):
            client.set_state(job_id, "failed")
        admin.delete_cluster("pool")
        assert admin.list_clusters() == {"items": [], "next_cursor": None}


def httpx_get(server: LiveServer, path: str, token: str | None) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{server.url}{path}", headers=headers)
    if response.is_success:
        return dict(response.json())
    raise ProblemError(response.status_code, response.json())


def test_auth_no_token_wrong_token_wrong_tenant_read_only(server: LiveServer) -> None:
    # Tenants c and d: the module's server also holds the lifecycle test's team-a jobs.
    with MeshctxClient(server.url, token="writer-c-0123456789") as writer:
        writer.register_job("a-job", fsdp2(8))

    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic d3JpdGVyLWE="}):
        response = httpx.get(f"{server.url}/v1/jobs/a-job", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["code"] == "unauthenticated" and "a-job" not in response.json()["detail"]

    with MeshctxClient(server.url, token="writer-d-0123456789") as other:  # another tenant: as if the job did not exist
        assert refused(lambda: other.get_job("a-job")).status == 404
        assert refused(lambda: other.delete_job("a-job")).status == 404
        assert refused(lambda: other.attest("a-job", "sha256:x")).status == 404
        assert other.list_jobs()["items"] == []
        other.register_job("a-job", fsdp2(4))  # the same id in its own namespace

    with MeshctxClient(server.url, token="reader-c-0123456789") as reader:
        assert reader.get_job("a-job")["gpus"] == 8  # team-c's job is untouched by team-d
        for write in (
            lambda: reader.register_job("r-job", fsdp2(8)),
            lambda: reader.delete_job("a-job"),
            lambda: reader.set_state("a-job", "failed"),
            lambda: reader.attest("a-job", "sha256:x"),
            lambda: reader.put_cluster("c", nodes=1, gpus_per_node=8),
        ):
            forbidden = refused(write)
            assert forbidden.status == 403 and forbidden.problem["code"] == "forbidden"
            assert "read role" in forbidden.problem["detail"]
    with MeshctxClient(server.url, token="writer-c-0123456789") as writer:
        assert refused(lambda: writer.put_cluster("c", nodes=1, gpus_per_node=8)).status == 403  # admin only
        assert writer.get_job("a-job")["state"] == "registered"

    # Validation stays open by default.
    assert httpx.post(f"{server.url}/v1/validate", json=fsdp2(8).to_dict()).json()["valid"] is True


def test_auth_defaults_and_closed_validation(serve: Callable[..., LiveServer], tmp_path: Path) -> None:
    # No tokens, bound to loopback (the README's local run): every request is the local tenant's admin.
    local = serve(MESHCTX_DATA_DIR=str(tmp_path / "local"))
    with MeshctxClient(local.url, token="") as client:
        client.put_cluster("laptop", nodes=1, gpus_per_node=8)
        assert client.register_job("dev", fsdp2(8), cluster="laptop")["state"] == "registered"
    # Tokens required but none configured: refused with the fix, validation still open.
    closed = serve(MESHCTX_DATA_DIR=str(tmp_path / "closed"), MESHCTX_AUTH="tokens")
    response = httpx.get(f"{closed.url}/v1/jobs")
    assert response.status_code == 401 and "MESHCTX_TOKENS_FILE" in response.json()["detail"]
    assert httpx.post(f"{closed.url}/v1/validate", json=fsdp2(8).to_dict()).status_code == 200
    # MESHCTX_OPEN_VALIDATE=false: validate and layout need a read token too.
    guarded = serve(
        MESHCTX_DATA_DIR=str(tmp_path / "guarded"),
        MESHCTX_OPEN_VALIDATE="false",
        MESHCTX_TOKENS='{"reader-x-0123456789": {"tenant": "x", "role": "read"}}',
    )
    for path in ("/v1/validate", "/v1/layout"):
        assert httpx.post(f"{guarded.url}{path}", json=fsdp2(8).to_dict()).status_code == 401
        answer = httpx.post(
            f"{guarded.url}{path}", json=fsdp2(8).to_dict(), headers={"Authorization": "Bearer reader-x-0123456789"}
        )
        assert answer.status_code == 200
