"""Cluster topologies and job placements over HTTP on SQLite and PostgreSQL: ``PUT/GET /v1/clusters`` with
``topology``, ``POST /v1/place`` with ``cluster_name``, jobs with ``nodes``, and the CLI's ``--topology`` and
``--cluster`` (a subprocess against the live server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_registry_cli import meshctx

from meshctx.client import MeshctxClient, ProblemError
from meshctx.config import ParallelismSizes
from meshctx.plan.request import TopologyRequest
from tests.support.servers import LiveServer


def racks(count: int = 4, gpus: int = 4) -> dict[str, Any]:
    """gpu1..gpuN in two NVLink domains by parity: hostname order splits every tp group of two nodes."""
    return {
        "nodes": [
            {"name": f"gpu{i}", "gpus": gpus, "nvlink_domain": f"nvl{i % 2}", "leaf": "leaf0", "spine": None}
            for i in range(1, count + 1)
        ]
    }


TP8 = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=8), world_size=16)


def refused(call: Callable[[], object]) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        call()
    return caught.value


def test_topology_place_and_job_placement(server: LiveServer) -> None:
    with (
        MeshctxClient(server.url, token="admin-a-0123456789") as admin,
        MeshctxClient(server.url, token="reader-a-0123456789") as reader,
        MeshctxClient(server.url, token="writer-a-0123456789") as writer,
        MeshctxClient(server.url, token="writer-b-0123456789") as other,
    ):
        stored = admin.put_cluster("racks", nodes=4, gpus_per_node=4, topology=racks())
        assert stored["topology"]["nodes"][0] == racks()["nodes"][0]
        assert reader.get_cluster("racks")["topology"] == stored["topology"]
        admin.put_cluster("bare", nodes=4, gpus_per_node=4)
        assert reader.get_cluster("bare")["topology"] is None

        wrong = refused(lambda: admin.put_cluster("odd", nodes=2, gpus_per_node=8, topology=racks()))
        fields = {e["field"]: e["detail"] for e in wrong.problem["errors"]}
        assert wrong.status == 422 and "lists 4 nodes but the cluster has nodes=2" in fields["topology.nodes"]
        assert "gpus_per_node=8" in fields["topology.nodes.gpus"]
        unknown_key = httpx.put(
            f"{server.url}/v1/clusters/odd",
            json={"nodes": 1, "gpus_per_node": 4, "topology": {"nodes": [{"name": "a", "gpus": 4, "rack": "r"}]}},
            headers={"Authorization": "Bearer admin-a-0123456789"},
        )
        assert unknown_key.status_code == 422 and "rack" in unknown_key.text

        # POST /v1/place with cluster_name answers what the same topology inline answers.
        body = {**TP8.to_dict(), "nodes": "gpu[1-4]"}
        inline = reader.place({**body, "topology": racks()})
        named = reader.place({**body, "cluster_name": "racks"})
        assert named == inline and named["axes"]["tp"]["crossing"]["nvlink_domain"] == 0
        missing = refused(lambda: other.place({**body, "cluster_name": "racks"}))  # another tenant's: none
        assert missing.status == 404 and "racks" in str(missing)
        no_topology = refused(lambda: reader.place({**body, "cluster_name": "bare"}))
        assert no_topology.status == 422 and no_topology.problem["errors"][0]["field"] == "cluster_name"
        assert "without a topology" in no_topology.problem["errors"][0]["detail"]
        both = refused(lambda: reader.place({**body, "cluster_name": "racks", "topology": racks()}))
        assert both.status == 422 and both.problem["errors"][0]["field"] == "topology"
        anonymous = httpx.post(f"{server.url}/v1/place", json={**body, "cluster_name": "racks"})
        assert anonymous.status_code == 401
        assert httpx.post(f"{server.url}/v1/place", json={**body, "topology": racks()}).status_code == 200

        # A job with its allocation keeps the placement the place route computes.
        bad = refused(lambda: writer.register_job("bad", TP8, cluster="racks", nodes=["gpu1", "gpu2", "gpu9"]))
        assert bad.status == 422 and bad.problem["code"] == "invalid_placement"
        assert {p["code"] for p in bad.problem["problems"]} >= {"unknown_node", "allocation_size_mismatch"}
        assert str(bad).find("nodes: ") >= 0
        job = writer.register_job("llm", TP8, cluster="racks", nodes="gpu[1-4]")
        assert job["placement"] == {k: named[k] for k in ("order", "gpus_per_node", "axes")}
        assert reader.get_job("llm")["placement"] == job["placement"]
        full = refused(lambda: writer.register_job("bad", TP8, cluster="racks", nodes=["gpu1", "gpu2", "gpu9"]))
        assert full.status == 409 and full.problem["code"] == "capacity_exceeded"  # checked before placing
        bare = refused(lambda: writer.register_job("bad", TP8, cluster="bare", nodes="gpu1"))  # held: too few
        assert bare.status == 422 and bare.problem["errors"][0]["field"] == "nodes"


def test_cli_topology_and_place_cluster(server: LiveServer, tmp_path: Path) -> None:
    topology = tmp_path / "racks.json"
    topology.write_text(json.dumps(racks()))
    done = meshctx(
        server, "clusters", "put", "racks-cli", "--nodes", "4", "--gpus-per-node", "4", "--topology", str(topology)
    )
    assert done.returncode == 0 and "topology of 4 nodes" in done.stdout, done.stderr
    placed = meshctx(
        server,
        "place",
        "--cluster",
        "racks-cli",
        "--server",
        server.url,
        "--tp",
        "8",
        "--json",
        token="reader-a-0123456789",
    )
    assert placed.returncode == 0, placed.stderr
    offline = meshctx(server, "place", "--topology", str(topology), "--tp", "8", "--json")
    assert json.loads(placed.stdout) == json.loads(offline.stdout)  # world size filled from the stored topology
    none = meshctx(server, "place", "--cluster", "racks-cli", "--tp", "8")
    assert none.returncode == 2 and "--server" in none.stderr
    other = meshctx(
        server, "place", "--cluster", "racks-cli", "--server", server.url, "--tp", "8", token="writer-b-0123456789"
    )
    assert other.returncode == 2 and "racks-cli" in other.stderr
    meshctx(server, "clusters", "put", "bare-cli", "--nodes", "4", "--gpus-per-node", "4")
    bare = meshctx(server, "place", "--cluster", "bare-cli", "--server", server.url, "--tp", "8")
    assert bare.returncode == 2 and "--topology FILE" in bare.stderr
    refused_job = meshctx(  # before j1 fills the cluster: capacity is checked before placing
        server,
        "jobs",
        "register",
        "j2",
        "--tp",
        "8",
        "--world-size",
        "16",
        "--cluster",
        "racks-cli",
        "--nodes",
        "gpu[1-2],gpu9",
    )
    assert refused_job.returncode == 1 and "invalid_placement" in refused_job.stderr and "gpu9" in refused_job.stderr
    job = meshctx(
        server,
        "jobs",
        "register",
        "j1",
        "--tp",
        "8",
        "--world-size",
        "16",
        "--cluster",
        "racks-cli",
        "--nodes",
        "gpu[1-4]",
    )
    assert (
        job.returncode == 0
        and "placed: " in job.stdout
        and "crossings (node/nvlink_domain/leaf/spine): tp 2/0/0/2" in job.stdout
    ), job.stdout
