"""``MeshContext.from_env()`` tells the registry the job is alive: with ``MESHCTX_JOB_ID`` (the renderings set it)
and ``MESHCTX_SERVER``, rank 0 attests the meshes it built and renews the job's lease while the process runs."""

from __future__ import annotations

import time

import pytest

from meshctx import MeshContext
from meshctx.client import MeshctxClient
from meshctx.runtime.heartbeat import _RUNNING
from tests.support.servers import LiveServer
from tests.torch.test_from_env import rendered_env


@pytest.mark.torch
def test_from_env_attests_and_heartbeats_the_registered_job(live_server: LiveServer) -> None:
    env = rendered_env(1, "ddp")
    assert env["MESHCTX_JOB_ID"] == "meshctx-job"  # the rendering names the job (--job-name)
    request = {"strategy": "ddp", "world_size": int(env["WORLD_SIZE"])}
    with MeshctxClient(live_server.url) as client:
        client.register_job("from-env-beats", request, lease_seconds=1)
        ctx = MeshContext.from_env(env | {"MESHCTX_JOB_ID": "from-env-beats", "MESHCTX_SERVER": live_server.url})
        beat = _RUNNING[-1]
        try:
            assert beat.job_id == "from-env-beats"
            time.sleep(2.5)
            job = client.get_job("from-env-beats")
            assert job["state"] == "running" and job["fingerprint"] == ctx.fingerprint()
        finally:
            beat.stop()
        count = len(_RUNNING)
        MeshContext.from_env(env)  # no MESHCTX_SERVER: no heartbeat
        MeshContext.from_env(env | {"MESHCTX_SERVER": live_server.url, "RANK": "3"})  # not rank 0: none either
        assert len(_RUNNING) == count
