"""deploy/slurm/meshctx-slurmctld run as Slurm runs it (a bare environment of SLURM_* variables) against a real
meshctx server, without a Slurm cluster: what it registers, how it finishes, and that it never fails a job
(tests/slurm/test_slurm_registry.py runs it inside a real Slurm)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshctx.client import MeshctxClient, ProblemError
from tests.support.env import REPO
from tests.support.servers import LiveServer, start_server

SCRIPT = REPO / "deploy" / "slurm" / "meshctx-slurmctld"
CLUSTER = "hooks"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, MeshctxClient]]:
    live = start_server(tmp_path_factory.mktemp("hooks"))
    client = MeshctxClient(live.url)
    topology = {"nodes": [{"name": f"gpu{i}", "gpus": 4, "nvlink_domain": None, "leaf": "l0"} for i in range(1, 5)]}
    client.put_cluster(CLUSTER, nodes=4, gpus_per_node=4, topology=topology)
    try:
        yield live, client
    finally:
        client.close()
        live.stop()


def run_hook(tmp_path: Path, url: str, context: str, job: str, timeout: float = 30, **slurm: str) -> list[str]:
    """The script with only what slurmctld gives it (no PATH entries for Slurm: scontrol is not there) and a
    meshctx-slurm.env; the lines it logged."""
    log = tmp_path / f"hooks-{job}.log"
    env_file = tmp_path / "meshctx-slurm.env"
    env_file.write_text(
        f"MESHCTX_SERVER={url}\nMESHCTX_CLUSTER={CLUSTER}\nMESHCTX_CLI='{sys.executable} -m meshctx.cli'\n"
        f"PYTHONPATH={REPO / 'src'}:{REPO / 'service'}\nMESHCTX_HOOK_TIMEOUT={timeout}\nMESHCTX_SLURM_LOG={log}\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "MESHCTX_SLURM_ENV": str(env_file),
        "SLURM_SCRIPT_CONTEXT": context,
        "SLURM_JOB_ID": job,
        "SLURM_JOB_USER": "alice",
        **slurm,
    }
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr  # never: Slurm would requeue the job
    return log.read_text().splitlines() if log.exists() else []


def state(client: MeshctxClient, job_id: str) -> str | None:
    try:
        job: dict[str, Any] = client.get_job(job_id)
    except ProblemError as error:
        assert error.status == 404
        return None
    return str(job["state"])


JOB = {"SLURM_JOB_COMMENT": "meshctx:strategy=fsdp2,tp=4,dp=2,nproc=4", "SLURM_JOB_NUM_NODES": "2"}


def test_prolog_registers_the_job_with_its_nodes_and_a_crash_fails_it(
    server: tuple[LiveServer, MeshctxClient], tmp_path: Path
) -> None:
    live, client = server
    lines = run_hook(tmp_path, live.url, "prolog_slurmctld", "101", SLURM_JOB_NODELIST="gpu[2,4]", **JOB)
    assert lines == []
    job = client.get_job("slurm-101")
    assert (job["state"], job["cluster"], job["gpus"]) == ("registered", CLUSTER, 8)
    assert sorted(job["placement"]["order"]) == ["gpu2", "gpu4"]
    assert job["labels"] == {"slurm_job": "101", "slurm_user": "alice"}
    run_hook(tmp_path, live.url, "epilog_slurmctld", "101", SLURM_JOB_EXIT_CODE2="0:9", **JOB)
    assert state(client, "slurm-101") == "failed"  # a signal: failed at once


def test_epilog_finishes_a_job_that_exited_0(server: tuple[LiveServer, MeshctxClient], tmp_path: Path) -> None:
    live, client = server
    run_hook(tmp_path, live.url, "prolog_slurmctld", "102", SLURM_JOB_NODELIST="gpu1,gpu3", **JOB)
    assert state(client, "slurm-102") == "registered"
    # 0:0: a detached copy asks scontrol for the final JobState; a Slurm that no longer knows the job (here:
    # scontrol without a slurm.conf) leaves the exit code's word
    run_hook(tmp_path, live.url, "epilog_slurmctld", "102", SLURM_JOB_EXIT_CODE2="0:0", **JOB)
    deadline = time.monotonic() + 60
    while state(client, "slurm-102") != "finished":
        assert time.monotonic() < deadline, state(client, "slurm-102")
        time.sleep(0.2)


def test_jobs_without_the_comment_are_not_touched(server: tuple[LiveServer, MeshctxClient], tmp_path: Path) -> None:
    live, client = server
    for context in ("prolog_slurmctld", "epilog_slurmctld"):
        lines = run_hook(tmp_path, live.url, context, "103", SLURM_JOB_COMMENT="nightly", SLURM_JOB_NODELIST="gpu1")
        assert lines == []
    assert state(client, "slurm-103") is None


def test_an_unreadable_comment_is_logged_and_never_reaches_a_shell(
    server: tuple[LiveServer, MeshctxClient], tmp_path: Path
) -> None:
    live, client = server
    planted = tmp_path / "planted"
    comments = {"104": f"meshctx:tp=$(touch {planted}),nproc=4", "107": f"meshctx:tp=4;touch${{IFS}}{planted},nproc=4"}
    for job, comment in comments.items():
        lines = run_hook(
            tmp_path, live.url, "prolog_slurmctld", job, SLURM_JOB_COMMENT=comment, SLURM_JOB_NODELIST="gpu1"
        )
        assert len(lines) == 1 and "cannot read tp=" in lines[0] and "not registered" in lines[0], lines
        assert not planted.exists()
        assert state(client, f"slurm-{job}") is None


def test_a_service_that_is_down_or_hangs_costs_one_log_line_and_never_the_job(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}"
    lines = run_hook(tmp_path, down, "prolog_slurmctld", "105", SLURM_JOB_NODELIST="gpu1", **JOB)
    assert len(lines) == 1 and "the meshctx service did not answer" in lines[0] and "the job goes on" in lines[0]
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # never answers
        started = time.monotonic()
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        lines = run_hook(tmp_path, url, "epilog_slurmctld", "106", timeout=1, SLURM_JOB_EXIT_CODE2="3:0", **JOB)
        assert time.monotonic() - started < 15
    assert len(lines) == 1 and "took longer than 1 s (MESHCTX_HOOK_TIMEOUT)" in lines[0], lines
