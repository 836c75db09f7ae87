"""The Slurm lifecycle of the registry inside a real Slurm (docs/contract.md "Registry lifecycle"): the shipped
``deploy/slurm/meshctx-slurmctld`` (PrologSlurmctld and EpilogSlurmctld of the test cluster, see .ci/slurm-up)
registers each opted-in job as ``slurm-<jobid>`` with its nodes and finishes it from its exit code, against a real
meshctx server; it fails open when the service is down or hangs; ``meshctx jobs reconcile --slurm`` settles the
jobs Slurm no longer knows."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meshctx.client import MeshctxClient, ProblemError
from meshctx.plan.request import TopologyRequest
from tests.slurm.conftest import ROOT, Cluster
from tests.support.servers import LiveServer, start_server

HOST = socket.gethostname().split(".")[0]  # the live node (.ci/slurm-up names it after this host)
CLUSTER = "slurm-test"
JOB = ["--gpus-per-node=8", "--comment=meshctx:tp=8,nproc=8", "--output=/dev/null"]  # the whole node, as registered


@dataclass
class Hooked:
    cluster: Cluster
    server: LiveServer
    client: MeshctxClient
    log: Path  # the script's MESHCTX_SLURM_LOG
    configure: Callable[..., None]  # rewrite meshctx-slurm.env (server=..., timeout=...)


@pytest.fixture(scope="module")
def hooked(slurm_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    server = start_server(tmp_path_factory.mktemp("registry"))
    client = MeshctxClient(server.url)
    topology = {
        "nodes": [
            {"name": name, "gpus": 8, "nvlink_domain": None, "leaf": "leaf0", "spine": None}
            for name in (HOST, "meshctx-2", "meshctx-3", "meshctx-4")
        ]
    }
    client.put_cluster(CLUSTER, nodes=4, gpus_per_node=8, topology=topology)
    env_file = slurm_cluster.dir / "meshctx-slurm.env"
    log = slurm_cluster.dir / "meshctx-hooks.log"

    def configure(
        server_url: str = server.url, timeout: float = 30, cli: str = f"{sys.executable} -m meshctx.cli"
    ) -> None:
        env_file.write_text(
            f"MESHCTX_SERVER={server_url}\nMESHCTX_CLUSTER={CLUSTER}\n"
            f"MESHCTX_CLI='{cli}'\nPYTHONPATH={ROOT / 'src'}:{ROOT / 'service'}\n"
            f"MESHCTX_HOOK_TIMEOUT={timeout}\nMESHCTX_SLURM_LOG={log}\n"
        )

    configure()
    try:
        yield Hooked(slurm_cluster, server, client, log, configure)
    finally:
        env_file.unlink(missing_ok=True)
        client.close()
        server.stop()


def _submit(cluster: Cluster, *options: str, wrap: str) -> str:
    done = cluster.run("sbatch", "--parsable", *options, "--wrap", wrap)
    assert done.returncode == 0, done.stderr
    found = re.match(r"(\d+)", done.stdout)
    assert found, done.stdout
    return found.group(1)


def _job(client: MeshctxClient, job_id: str) -> dict[str, Any] | None:
    try:
        return client.get_job(job_id)
    except ProblemError as error:
        assert error.status == 404, error.problem
        return None


def _until(what: Callable[[], Any], timeout: float = 90, message: str = "", show: Callable[[], Any] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.3)
    pytest.fail(f"not within {timeout} s: {message}; {show()}")


def _state(client: MeshctxClient, job_id: str) -> str | None:
    job = _job(client, job_id)
    return None if job is None else str(job["state"])


def _slurm_state(cluster: Cluster, job: str) -> str:
    shown = cluster.run("scontrol", "show", "job", "-o", job).stdout
    found = re.search(r"JobState=(\w+)", shown)
    return found.group(1) if found else ""


def test_a_job_is_registered_with_its_nodes_while_it_runs_and_finished_when_it_exits_0(hooked: Hooked) -> None:
    job = _submit(hooked.cluster, *JOB, wrap="sleep 3")
    registered = _until(lambda: _job(hooked.client, f"slurm-{job}"), message="the prolog registers the job")
    assert registered["state"] in ("registered", "finished")  # the job may already be over on a slow machine
    assert registered["cluster"] == CLUSTER and registered["gpus"] == 8
    assert registered["labels"]["slurm_job"] == job
    assert registered["placement"]["order"] == [HOST]  # SLURM_JOB_NODELIST, placed on the cluster's topology
    assert registered["plan"]["sizes"]["tp"] == 8
    assert registered["lease_seconds"] == 0  # Slurm ends it, not a missing heartbeat
    _until(lambda: _state(hooked.client, f"slurm-{job}") == "finished", message="the epilog finishes it")


def test_a_crashed_job_is_failed(hooked: Hooked) -> None:
    job = _submit(hooked.cluster, *JOB, wrap="exit 3")
    _until(lambda: _state(hooked.client, f"slurm-{job}") == "failed", message="exit 3 → failed")


def test_a_cancelled_job_is_failed(hooked: Hooked) -> None:
    job = _submit(hooked.cluster, *JOB, wrap="sleep 300")
    _until(lambda: _state(hooked.client, f"slurm-{job}") == "registered", message="registered while it runs")
    _until(lambda: _slurm_state(hooked.cluster, job) == "RUNNING", message="its prolog is done")  # not CONFIGURING
    assert hooked.cluster.run("scancel", job).returncode == 0
    _until_state(hooked, job, "failed", "scancel → failed")


def test_jobs_that_did_not_opt_in_are_not_registered(hooked: Hooked) -> None:
    job = _submit(hooked.cluster, "--output=/dev/null", "--comment=nightly", wrap="true")
    _until(lambda: _slurm_state(hooked.cluster, job) == "COMPLETED", message="the job completes")
    time.sleep(2)  # the epilog runs after the job completes
    assert _job(hooked.client, f"slurm-{job}") is None


def test_a_job_cancelled_while_it_is_being_registered_is_not_left_registered(hooked: Hooked, tmp_path: Path) -> None:
    """Slurm kills the prolog of a job cancelled while it is CONFIGURING: the registration must die with it
    rather than land after the epilog (a job registered forever)."""
    slow = tmp_path / "meshctx"
    slow.write_text(f'#!/bin/sh\ncase "$2" in register) sleep 4 ;; esac\nexec {sys.executable} -m meshctx.cli "$@"\n')
    slow.chmod(0o755)
    hooked.configure(cli=str(slow))
    try:
        job = _submit(hooked.cluster, *JOB, wrap="sleep 300")
        _until(lambda: _slurm_state(hooked.cluster, job) == "CONFIGURING", message="its prolog runs")
        assert hooked.cluster.run("scancel", job).returncode == 0
        _until(lambda: _slurm_state(hooked.cluster, job) == "CANCELLED")
        time.sleep(8)  # past the slow registration
        assert _state(hooked.client, f"slurm-{job}") in (None, "failed")
    finally:
        hooked.configure()


def _log_lines(hooked: Hooked, job: str) -> list[str]:
    text = hooked.log.read_text() if hooked.log.exists() else ""
    return [line for line in text.splitlines() if f"job {job} " in line]


def _until_state(hooked: Hooked, job: str, state: str, message: str) -> None:
    """Wait for the registry to show ``state`` for Slurm job ``job``; on timeout, show both sides and the hook log."""
    _until(
        lambda: _state(hooked.client, f"slurm-{job}") == state,
        message=message,
        show=lambda: (
            _state(hooked.client, f"slurm-{job}"),
            _slurm_state(hooked.cluster, job),
            _log_lines(hooked, job),
        ),
    )


def test_jobs_run_when_the_service_is_down_or_hangs_with_one_log_line_each(hooked: Hooked) -> None:
    """A non-zero PrologSlurmctld makes Slurm requeue the job: the script fails open, with a timeout."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: connection refused
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # accepts into the backlog and never answers
    try:
        for url, timeout, phrase in (
            (down, 30.0, "did not answer"),
            (f"http://127.0.0.1:{hung.getsockname()[1]}", 2.0, "took longer than 2"),
        ):
            hooked.configure(server_url=url, timeout=timeout)
            job = _submit(hooked.cluster, *JOB, wrap="true")
            _until(lambda job=job: _slurm_state(hooked.cluster, job) == "COMPLETED", message=f"the job runs ({url})")
            lines = _until(lambda job=job: len(_log_lines(hooked, job)) >= 2 and _log_lines(hooked, job))
            assert len(lines) == 2, lines  # one for the prolog, one for the epilog
            assert "prolog_slurmctld" in lines[0] and "epilog_slurmctld" in lines[1], lines
            assert all(phrase in line and "the job goes on" in line for line in lines), lines
    finally:
        hung.close()
        hooked.configure()


def _reconcile(hooked: Hooked, *extra: str) -> subprocess.CompletedProcess[str]:
    return hooked.cluster.run(
        sys.executable,
        "-m",
        "meshctx.cli",
        "jobs",
        "reconcile",
        "--slurm",
        "--server",
        hooked.server.url,
        "--json",
        *extra,
    )


def test_reconcile_settles_the_jobs_slurm_ended_or_forgot_and_leaves_running_ones(hooked: Hooked) -> None:
    request = TopologyRequest(nnodes=1, nproc_per_node=8)
    # Slurm never heard of this one (e.g. registered before the controller's state was lost)
    hooked.client.register_job("slurm-999999", request, cluster=CLUSTER)
    # Slurm ran this one to completion but its epilog never told the registry (it did not opt in)
    done = _submit(hooked.cluster, "--output=/dev/null", wrap="true")
    _until(lambda: _slurm_state(hooked.cluster, done) == "COMPLETED")
    hooked.client.register_job(f"slurm-{done}", request)
    # and this one still runs
    running = _submit(hooked.cluster, *JOB, wrap="sleep 300")
    _until(lambda: _state(hooked.client, f"slurm-{running}") == "registered")
    try:
        dry = _reconcile(hooked, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert _state(hooked.client, "slurm-999999") == "registered"  # a dry run changes nothing
        settled = _reconcile(hooked)
        assert settled.returncode == 0, settled.stderr
        rows = {row["job_id"]: row for row in json.loads(settled.stdout)}
        forgotten = "lost"
        assert rows["slurm-999999"]["to"] == forgotten and rows["slurm-999999"]["slurm"] is None
        assert rows[f"slurm-{done}"] == {
            "job_id": f"slurm-{done}",
            "from": "registered",
            "to": "finished",
            "slurm": "COMPLETED",
        }
        assert f"slurm-{running}" not in rows
        assert _state(hooked.client, "slurm-999999") == forgotten
        assert _state(hooked.client, f"slurm-{done}") == "finished"
        assert _state(hooked.client, f"slurm-{running}") == "registered"
    finally:
        hooked.cluster.run("scancel", running)
        # its epilog frees the node before the next test submits a job to it (else: 409 nodes_in_use there)
        _until(lambda: _state(hooked.client, f"slurm-{running}") not in ("registered", "running"), message="epilog")


def test_reconcile_changes_nothing_when_slurm_does_not_answer(hooked: Hooked, tmp_path: Path) -> None:
    hooked.client.register_job("slurm-999998", TopologyRequest(nnodes=1, nproc_per_node=8), cluster=CLUSTER)
    broken = tmp_path / "slurm.conf"
    broken.write_text("ClusterName=nowhere\nSlurmctldHost=localhost\nSlurmctldPort=1\n")
    done = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "jobs", "reconcile", "--slurm", "--server", hooked.server.url],
        env=hooked.cluster.env | {"SLURM_CONF": str(broken)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "Slurm did not answer" in done.stderr and "nothing was changed" in done.stderr
    assert _state(hooked.client, "slurm-999998") == "registered"


def test_a_job_running_across_a_slurmctld_restart_is_finished(hooked: Hooked) -> None:
    job = _submit(hooked.cluster, *JOB, wrap="sleep 8")
    _until(lambda: _state(hooked.client, f"slurm-{job}") == "registered")
    _until(lambda: _slurm_state(hooked.cluster, job) == "RUNNING", message="its prolog is done")
    restarted = hooked.cluster.restart_controller()
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    _until_state(hooked, job, "finished", "the epilog after the restart")
