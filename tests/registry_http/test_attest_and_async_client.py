"""The job side of the registry: a real ``MeshContext`` (torch's ``fake`` backend, 64 ranks) attests what it built
to a live server; the async client drives the same registry; ``MESHCTX_AUTH=disabled`` lets token-less callers in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from meshctx.client import AsyncMeshctxClient, MeshctxClient, ProblemError
from meshctx.config import FSDP2Config, ParallelismSizes
from meshctx.plan.request import TopologyRequest
from tests.support.servers import LiveServer

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
from torch.testing._internal.distributed.fake_pg import FakeStore  # noqa: E402

from meshctx import MeshContext  # noqa: E402


def request(tp: int, ep: int = 1) -> TopologyRequest:
    return TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=tp, ep_size=ep), world_size=64)


def test_mesh_context_attests_the_meshes_it_built(server: LiveServer) -> None:
    dist.init_process_group("fake", rank=13, world_size=64, store=FakeStore())
    try:
        ctx = MeshContext.build(FSDP2Config(), ParallelismSizes(tp_size=8, ep_size=4))
        with MeshctxClient(server.url, token="writer-a-0123456789") as client:
            approved = client.register_job("moe-64", request(tp=8, ep=4))
            other = client.register_job("dense-64", request(tp=4))

            # The right job: its stored fingerprint equals the live meshes', so it is now running.
            record = ctx.attest("moe-64", server.url, token="writer-a-0123456789")
            assert record["matched"] is True and record["reported"] == approved["fingerprint"]
            assert client.get_job("moe-64")["state"] == "running"

            # The wrong job (approved as tp 4, no EP): refused with both fingerprints, recorded, not running.
            with pytest.raises(ProblemError) as caught:
                ctx.attest("dense-64", client)
            assert caught.value.status == 409 and caught.value.problem["code"] == "fingerprint_mismatch"
            assert caught.value.problem["expected"] == other["fingerprint"]
            assert caught.value.problem["reported"] == approved["fingerprint"]
            assert [a["matched"] for a in client.attestations("dense-64")] == [False]
            assert client.get_job("dense-64")["state"] == "registered"

            # A read-only token may not attest.
            with pytest.raises(ProblemError) as forbidden:
                ctx.attest("moe-64", server.url, token="reader-a-0123456789")
            assert forbidden.value.status == 403
    finally:
        dist.destroy_process_group()


def test_async_client_drives_the_registry(server: LiveServer) -> None:
    async def scenario() -> None:
        async with AsyncMeshctxClient(server.url, token="admin-a-0123456789") as client:
            cluster = await client.put_cluster("pool", nodes=8, gpus_per_node=8, nvlink_domain=8)
            assert cluster["gpus"] == 64
            assert [c["name"] for c in (await client.list_clusters())["items"]] == ["pool"]
            # Two registrations race for the 64 GPUs: exactly one wins, the other is refused (409).
            outcomes = await asyncio.gather(
                *(client.register_job(f"job-{i}", request(tp=8), cluster="pool", labels={"i": str(i)}) for i in (0, 1)),
                return_exceptions=True,
            )
            won = [o for o in outcomes if isinstance(o, dict)]
            lost = [o for o in outcomes if isinstance(o, ProblemError)]
            assert len(won) == 1 and len(lost) == 1 and lost[0].status == 409, outcomes
            winner = won[0]
            assert winner["gpus"] == 64 and winner["state"] == "registered"
            job_id = winner["job_id"]
            assert (await client.get_job(job_id))["fingerprint"] == winner["fingerprint"]
            page = await client.list_jobs(cluster="pool", labels={"i": job_id[-1]}, limit=10)
            assert [j["job_id"] for j in page["items"]] == [job_id]
            attested = await client.attest(job_id, winner["fingerprint"])
            assert attested["matched"] is True
            assert [a["matched"] for a in await client.attestations(job_id)] == [True]
            finished = await client.set_state(job_id, "finished")
            assert finished["state"] == "finished"
            await client.delete_job(job_id, if_match=finished["etag"])
            with pytest.raises(ProblemError) as gone:
                await client.get_job(job_id)
            assert gone.value.status == 404
            await client.delete_cluster("pool")
            assert (await client.list_clusters())["items"] == []

    asyncio.run(scenario())


def test_auth_disabled_lets_token_less_callers_in_even_with_tokens(
    serve: Callable[..., LiveServer], tokens_file: Path, tmp_path: Path
) -> None:
    # Bound to loopback with tokens configured, "auto" requires them; "disabled" does not (development only).
    guarded = serve(MESHCTX_DATA_DIR=str(tmp_path / "auto"), MESHCTX_TOKENS_FILE=str(tokens_file))
    assert httpx.get(f"{guarded.url}/v1/jobs").status_code == 401
    opened = serve(
        MESHCTX_DATA_DIR=str(tmp_path / "off"), MESHCTX_TOKENS_FILE=str(tokens_file), MESHCTX_AUTH="disabled"
    )
    with MeshctxClient(opened.url, token="") as client:
        assert client.register_job("anyone", request(tp=8))["state"] == "registered"
        assert [j["job_id"] for j in client.list_jobs()["items"]] == ["anyone"]
