"""The in-job heartbeat (``meshctx.runtime.heartbeat``, started by ``MeshContext.from_env()``) against a real
server: rank 0 attests and keeps the job's lease alive while it runs; without the variables, or on another rank,
nothing starts; once the registry says the job ended, the thread stops."""

from __future__ import annotations

import time

from meshctx.client import MeshctxClient
from meshctx.config import ParallelismSizes
from meshctx.plan import plan_mesh
from meshctx.runtime.heartbeat import start_job_heartbeat
from tests.support.servers import LiveServer

PLAN = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=4)


class Built:
    """What ``from_env`` hands the heartbeat: something with the fingerprint of the meshes it built."""

    def fingerprint(self) -> str:
        return PLAN.fingerprint()


def test_nothing_starts_without_the_registry_or_off_rank_zero(server: LiveServer) -> None:
    assert start_job_heartbeat(Built(), {}) is None
    assert start_job_heartbeat(Built(), {"MESHCTX_JOB_ID": "j"}) is None
    assert start_job_heartbeat(Built(), {"MESHCTX_SERVER": server.url}) is None
    assert start_job_heartbeat(Built(), {"MESHCTX_JOB_ID": "j", "MESHCTX_SERVER": server.url, "RANK": "1"}) is None


def test_rank_zero_attests_and_keeps_the_lease_alive(server: LiveServer) -> None:
    with MeshctxClient(server.url, token="writer-a-0123456789") as client:
        client.register_job("beating", _request(), lease_seconds=1)
        env = {
            "MESHCTX_JOB_ID": "beating",
            "MESHCTX_SERVER": server.url,
            "MESHCTX_TOKEN": "writer-a-0123456789",
            "RANK": "0",
        }
        beat = start_job_heartbeat(Built(), env)
        assert beat is not None
        try:
            time.sleep(3.0)  # three leases long: alive only through the heartbeats
            job = client.get_job("beating")
            assert job["state"] == "running", job  # attested: the fingerprint matched
            assert beat.beats >= 3 and beat.interval_s < 1
            assert [a["matched"] for a in client.attestations("beating")] == [True]
        finally:
            beat.stop()
        time.sleep(1.5)
        assert client.get_job("beating")["state"] == "lost"  # the job stopped beating: its lease ran out

        client.register_job("ending", _request(), lease_seconds=1)
        ending = start_job_heartbeat(None, {**env, "MESHCTX_JOB_ID": "ending"})
        assert ending is not None
        client.set_state("ending", "failed")
        deadline = time.monotonic() + 5
        while ending.ended is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ending.ended == "failed"


def _request() -> dict[str, object]:
    return {"strategy": "fsdp2", "world_size": 4, "sizes": {"tp_size": 2}}
