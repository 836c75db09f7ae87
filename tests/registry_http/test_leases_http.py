"""Leases, heartbeats, held nodes and occupancy through real servers on SQLite and PostgreSQL, and expiry through
two replicas on one database: no double free, no resurrection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from meshctx.client import MeshctxClient, ProblemError
from meshctx.config import ParallelismSizes
from meshctx.plan.request import TopologyRequest
from tests.registry_http.test_registry_cli import meshctx
from tests.support.servers import LiveServer

EIGHT = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=8), world_size=8)


def refused(call: Callable[[], object]) -> ProblemError:
    with pytest.raises(ProblemError) as caught:
        call()
    return caught.value


def test_lease_heartbeat_nodes_and_occupancy(server: LiveServer) -> None:
    with (
        MeshctxClient(server.url, token="admin-a-0123456789") as admin,
        MeshctxClient(server.url, token="writer-a-0123456789") as writer,
        MeshctxClient(server.url, token="reader-a-0123456789") as reader,
    ):
        admin.put_cluster("leased", nodes=3, gpus_per_node=8)
        job = writer.register_job("leased-1", EIGHT, cluster="leased", nodes="n1", lease_seconds=6)
        assert (job["lease_seconds"], job["nodes"]) == (6, ["n1"]) and job["lease_expires_at"]
        assert writer.register_job("kept-1", EIGHT, cluster="leased", nodes="n2")["lease_seconds"] == 600  # default
        renewed = writer.heartbeat("leased-1")
        assert renewed["lease_expires_at"] > job["lease_expires_at"] and renewed["state"] == "registered"
        assert refused(lambda: reader.heartbeat("leased-1")).status == 403  # a write
        assert refused(lambda: writer.heartbeat("nope")).status == 404
        bad = refused(lambda: writer.register_job("bad", EIGHT, cluster="leased", lease_seconds=-1))
        assert bad.status == 422 and bad.problem["errors"][0]["field"] == "lease_seconds"

        clash = refused(lambda: writer.register_job("clash", EIGHT, cluster="leased", nodes=["n2"]))
        assert clash.status == 409 and clash.problem["code"] == "nodes_in_use"
        assert (clash.problem["hosts"], clash.problem["jobs"]) == (["n2"], {"kept-1": ["n2"]})
        occupancy = reader.occupancy("leased")
        assert occupancy["occupancy"] == [{"node": "n1", "job": "leased-1"}, {"node": "n2", "job": "kept-1"}]
        assert (occupancy["gpus"], occupancy["free_gpus"], occupancy["active_jobs"]) == (24, 8, 2)
        shown = meshctx(server, "clusters", "occupancy", "leased", token="reader-a-0123456789")
        assert shown.returncode == 0 and "8 of 24 GPUs free" in shown.stdout, shown.stderr
        assert any(line.split() == ["n1", "leased-1"] for line in shown.stdout.splitlines()), shown.stdout
        as_json = json.loads(
            meshctx(server, "clusters", "occupancy", "leased", "--json", token="reader-a-0123456789").stdout
        )
        assert as_json["occupancy"][0] == {"node": "n1", "job": "leased-1"}

        until = datetime.fromisoformat(renewed["lease_expires_at"])
        time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.3)  # no heartbeat since
        assert reader.occupancy("leased")["free_gpus"] == 16  # leased-1 is lost: its GPUs and node are free
        lost = reader.get_job("leased-1")
        assert lost["state"] == "lost" and lost["lease_expires_at"] is None
        ended = refused(lambda: writer.heartbeat("leased-1"))
        assert ended.status == 409 and ended.problem["code"] == "job_ended" and ended.problem["state"] == "lost"
        cli = meshctx(server, "jobs", "heartbeat", "leased-1", token="writer-a-0123456789")
        assert cli.returncode == 1 and "job_ended" in cli.stderr
        assert reader.occupancy("leased")["occupancy"] == [{"node": "n2", "job": "kept-1"}]
        assert writer.register_job("next-1", EIGHT, cluster="leased", nodes="n1", lease_seconds=0)["nodes"] == ["n1"]
        assert [j["job_id"] for j in reader.list_jobs(state="lost")["items"]] == ["leased-1"]
        beat = meshctx(server, "jobs", "heartbeat", "kept-1", token="writer-a-0123456789")
        assert beat.returncode == 0 and "lease renewed until" in beat.stdout, beat.stderr


def test_listings_leave_topologies_out_unless_asked(server: LiveServer) -> None:
    nodes = [{"name": f"t{i}", "gpus": 8, "nvlink_domain": None, "leaf": None, "spine": None} for i in range(64)]
    with MeshctxClient(server.url, token="admin-a-0123456789") as admin:
        admin.put_cluster("listed", nodes=64, gpus_per_node=8, topology={"nodes": nodes})
        plain = {c["name"]: c for c in admin.list_clusters()["items"]}["listed"]
        assert "topology" not in plain and plain["gpus"] == 512
        full = {c["name"]: c for c in admin.list_clusters(topology=True)["items"]}["listed"]
        assert len(full["topology"]["nodes"]) == 64
        assert admin.get_cluster("listed")["topology"] == full["topology"]
        size = len(
            httpx.get(f"{server.url}/v1/clusters", headers={"Authorization": "Bearer admin-a-0123456789"}).content
        )
        assert size < 2000, size


def test_two_replicas_expire_exactly_once(serve: Callable[..., LiveServer], db_url: str, tokens_file: Path) -> None:
    """Four leased jobs fill a cluster; two are kept alive through one replica while the other two expire, and
    then clients on both replicas race for the two freed nodes and heartbeat the lost jobs: each freed node goes
    to exactly one job, the counters equal what the active jobs hold, and the lost jobs stay lost."""
    replicas = [serve(MESHCTX_DATABASE_URL=db_url, MESHCTX_TOKENS_FILE=str(tokens_file)) for _ in range(2)]
    clients = [MeshctxClient(r.url, token="writer-a-0123456789") for r in replicas]
    try:
        with MeshctxClient(replicas[0].url, token="admin-a-0123456789") as admin:
            admin.put_cluster("race", nodes=4, gpus_per_node=8)
        for i, name in enumerate("abcd"):
            clients[0].register_job(name, EIGHT, cluster="race", nodes=f"r{i + 1}", lease_seconds=2)
        stop = threading.Event()

        def keep_alive() -> None:
            while not stop.is_set():
                for name in "ab":
                    clients[1].heartbeat(name)
                time.sleep(0.3)

        alive = threading.Thread(target=keep_alive)
        alive.start()
        try:
            time.sleep(2.5)

            def contend(i: int) -> str:
                client, job_id = clients[i % 2], f"x{i}"
                if i % 4 == 3:  # a heartbeat for a lost job, on either replica, never revives it
                    problem = refused(lambda: client.heartbeat("cd"[i % 2]))
                    return f"{problem.problem['code']}"
                try:
                    client.register_job(job_id, EIGHT, cluster="race", nodes=f"r{3 + i % 2}", lease_seconds=0)
                    return "registered"
                except ProblemError as error:
                    return str(error.problem.get("code"))

            with ThreadPoolExecutor(12) as pool:
                answers = list(pool.map(contend, range(24)))
        finally:
            stop.set()
            alive.join(timeout=30)
        assert answers.count("registered") == 2, answers
        assert set(answers) <= {"registered", "nodes_in_use", "capacity_exceeded", "job_ended"}, answers
        for client in clients:
            occupancy = client.occupancy("race")
            holders = {row["node"]: row["job"] for row in occupancy["occupancy"]}
            assert holders["r1"] == "a" and holders["r2"] == "b"
            assert holders["r3"].startswith("x") and holders["r4"].startswith("x")
            assert (occupancy["active_jobs"], occupancy["held_gpus"], occupancy["free_gpus"]) == (4, 32, 0)
            jobs = client.list_jobs(cluster="race", limit=100)["items"]
            active = [j for j in jobs if j["state"] in ("registered", "running")]
            assert sum(j["gpus"] for j in active) == occupancy["held_gpus"]
            assert {j["job_id"] for j in jobs if j["state"] == "lost"} == {"c", "d"}
    finally:
        for client in clients:
            client.close()
