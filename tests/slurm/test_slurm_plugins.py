"""The shipped Slurm plugins inside a real Slurm: sbatch, srun and salloc with the CLI filter on (the cluster's
slurm.conf) and bypassed (a user's own SLURM_CONF without CliFilterPlugins, where only job_submit.lua in
slurmctld stands), ``scontrol update`` re-checks, and a script from ``meshctx render slurm`` run to completion.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.slurm.conftest import Cluster

# (options, valid). The cluster has one live node with 8 (fake) GPUs and three more configured DOWN, so valid
# multi-node jobs are accepted and pend; -H holds every job so nothing runs.
SUBMISSIONS = [
    (["--gpus-per-node=8", "--comment=meshctx:tp=8"], True),  # --nodes not given: one node
    (["--gpus-per-node=8", "--comment=meshctx:tp=3"], False),
    (["--nodes=2-3", "--gpus-per-node=8", "--comment=meshctx:tp=8"], True),
    (["--nodes=2-3", "--gpus-per-node=h100:8", "--comment=meshctx:tp=8,dp=2"], False),  # 3 nodes: 24 ranks
    (["--nodes=2", "--gres=gpu:4", "--comment=meshctx:tp=4,dp=2"], True),
    (["--nodes=2", "--gres=gpu:4", "--comment=meshctx:tp=8,dp=2"], False),
    (["--gpus=16", "--comment=meshctx:tp=8"], True),
    (["--gpus=12", "--comment=meshctx:tp=8"], False),
    (["--nodes=1", "--ntasks-per-node=4", "--comment=meshctx:tp=4"], True),
    (["--nodes=1", "--ntasks-per-node=4", "--comment=meshctx:tp=3"], False),
    (["--nodes=2", "--comment=meshctx:tp=8,nproc=8"], True),
    (["--nodes=2", "--comment=meshctx:tp=8,nproc=3"], False),
    (["--nodes=2", "--comment=meshctx:tp=eight,nproc=8"], False),
    (["--nodes=2", "--gpus-per-node=3", "--comment=nightly build"], True),  # not a meshctx job
    (["-N1", "--gpus-per-node=4", "--comment=meshctx:tp=8,nproc=8"], False),  # 8 processes on 4 GPUs
    (["-N1", "--gpus-per-node=8", "--comment=meshctx:tp=4,nproc=4"], True),  # fewer processes than GPUs
]


def _job_id(stdout: str) -> str:
    found = re.search(r"(\d+)", stdout)
    assert found, stdout
    return found.group(1)


@pytest.mark.parametrize("bypass", [False, True], ids=["cli_filter", "bypassed"])
@pytest.mark.parametrize(("options", "valid"), SUBMISSIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_sbatch_accepts_valid_and_refuses_invalid_jobs(
    slurm_cluster: Cluster, options: list[str], valid: bool, bypass: bool
) -> None:
    done = slurm_cluster.run("sbatch", "--hold", "--parsable", *options, "--wrap", "true", bypass=bypass)
    if valid:
        assert done.returncode == 0, done.stderr
        slurm_cluster.run("scancel", _job_id(done.stdout))
        assert "Traceback" not in done.stderr
        return
    assert done.returncode != 0, done.stdout
    if bypass:  # only job_submit.lua inside slurmctld saw it
        assert "meshctx: " in done.stderr and "meshctx refused" not in done.stderr, done.stderr
    else:  # the CLI filter refused it first, with meshctx validate's report (or the reason it cannot read it)
        assert "meshctx refused this job's sizes" in done.stderr or "in the job's comment" in done.stderr
        assert "cli_filter plugin terminated with error" in done.stderr
    assert "Traceback" not in done.stderr and "usage:" not in done.stderr


@pytest.mark.parametrize("bypass", [False, True], ids=["cli_filter", "bypassed"])
def test_srun_and_salloc_run_valid_jobs_and_refuse_invalid_ones(slurm_cluster: Cluster, bypass: bool) -> None:
    good = ["--nodes=1", "--gpus-per-node=2", "--comment=meshctx:tp=2"]
    bad = ["--nodes=1", "--gpus-per-node=2", "--comment=meshctx:tp=4,dp=2"]
    ran = slurm_cluster.run("srun", *good, "sh", "-c", "echo ran-on-$(hostname)", bypass=bypass)
    assert ran.returncode == 0 and "ran-on-" in ran.stdout, ran.stderr
    got = slurm_cluster.run("salloc", *good, "sh", "-c", "echo allocated $SLURM_JOB_ID", bypass=bypass)
    assert got.returncode == 0 and "allocated" in got.stdout, got.stderr
    for command in ("srun", "salloc"):
        refused = slurm_cluster.run(command, *bad, "true", bypass=bypass)
        assert refused.returncode != 0, (command, refused.stdout)
        assert "2 ranks" in refused.stderr or "1 nodes x 2 processes" in refused.stderr, (command, refused.stderr)


def test_broken_cli_lets_the_job_through_to_job_submit(slurm_cluster: Cluster, tmp_path: Path) -> None:
    broken = tmp_path / "meshctx"
    broken.write_text(f"#!{sys.executable}\nraise RuntimeError('this meshctx is broken')\n")
    broken.chmod(0o755)
    env = slurm_cluster.env | {"MESHCTX_CLI": str(broken)}
    good = subprocess.run(
        ["sbatch", "--hold", "--parsable", "--gpus-per-node=8", "--comment=meshctx:tp=8", "--wrap", "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    slurm_cluster.run("scancel", _job_id(good.stdout))
    bad = subprocess.run(
        ["sbatch", "--hold", "--gpus-per-node=8", "--comment=meshctx:tp=3", "--wrap", "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr and "meshctx refused" not in bad.stderr
    assert "1 nodes x 8 processes" in bad.stderr  # job_submit.lua's verdict


def _comment(cluster: Cluster, job: str) -> str:
    shown = cluster.run("scontrol", "show", "job", job).stdout
    found = re.search(r"Comment=(\S*)", shown)
    return found.group(1) if found else ""


def test_scontrol_update_rechecks_comment_and_node_count(slurm_cluster: Cluster) -> None:
    submitted = slurm_cluster.run(
        "sbatch", "--hold", "--parsable", "--gpus-per-node=8", "--comment=meshctx:tp=8", "--wrap", "true"
    )
    assert submitted.returncode == 0, submitted.stderr
    job = _job_id(submitted.stdout)
    log = slurm_cluster.dir / "slurmctld.log"

    def refusals() -> list[str]:
        lines = log.read_text(errors="replace").splitlines()
        return [line for line in lines if f"meshctx: refused the update of job {job}:" in line]

    try:
        refused = slurm_cluster.run("scontrol", "update", f"job={job}", "Comment=meshctx:tp=3")
        assert refused.returncode != 0
        assert _comment(slurm_cluster, job) == "meshctx:tp=8"
        assert "1 nodes x 8 processes" in refusals()[-1]
        refused = slurm_cluster.run("scontrol", "update", f"job={job}", "Comment=meshctx:tp=8,dp=2")
        assert refused.returncode != 0 and len(refusals()) == 2  # one node is 8 ranks, pp·dp·cp·tp = 16
        accepted = slurm_cluster.run("scontrol", "update", f"job={job}", "Comment=meshctx:tp=8,dp=2", "NumNodes=2")
        assert accepted.returncode == 0, accepted.stderr
        assert _comment(slurm_cluster, job) == "meshctx:tp=8,dp=2"
        refused = slurm_cluster.run("scontrol", "update", f"job={job}", "NumNodes=3")
        assert refused.returncode != 0  # 3 nodes x 8 = 24 ranks
        assert len(refusals()) == 3 and "3 nodes x 8 processes" in refusals()[-1]
    finally:
        slurm_cluster.run("scancel", job)


JOB = """\
import os
import torch.distributed as dist
from meshctx import FSDP2Config, MeshContext, ParallelismSizes

dist.init_process_group("gloo")
sizes = ParallelismSizes(tp_size=int(os.environ["MESHCTX_TP_SIZE"]), pp_size=int(os.environ["MESHCTX_PP_SIZE"]))
ctx = MeshContext.build(FSDP2Config(), sizes)
live = ctx.to_plan().fingerprint()
print(f"rank {dist.get_rank()} of {dist.get_world_size()} fingerprint {live}", flush=True)
assert live == os.environ["MESHCTX_FINGERPRINT"], (live, os.environ["MESHCTX_FINGERPRINT"])
dist.destroy_process_group()
"""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def test_rendered_sbatch_script_runs_torchrun_and_builds_the_planned_mesh(
    slurm_cluster: Cluster, tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    (tmp_path / "job.py").write_text(JOB)
    rendered = slurm_cluster.run(
        "meshctx",
        "render",
        "slurm",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--tp",
        "2",
        "--json",
        "--command",
        "job.py",
    )
    assert rendered.returncode == 0, rendered.stderr
    body = json.loads(rendered.stdout)
    planned = body["plan"]["fingerprint"]
    script = tmp_path / "job.sbatch"
    script.write_text(body["rendering"]["text"])
    deadline = time.monotonic() + 60
    while not _port_free(29500):  # the script's rendezvous port (render slurm's fixed 29500)
        assert time.monotonic() < deadline, "port 29500, the rendered script's rendezvous port, stays busy"
        time.sleep(1)
    done = slurm_cluster.run(
        "sbatch", "--wait", f"--chdir={tmp_path}", f"--output={tmp_path}/out.txt", str(script), timeout=240
    )
    output = (tmp_path / "out.txt").read_text() if (tmp_path / "out.txt").exists() else ""
    assert done.returncode == 0, (done.stderr, output)
    # both ranks write to one output file: their reports may interleave, so find them wherever they are
    reports = re.findall(r"rank (\d) of 2 fingerprint (sha256:[0-9a-f]{64})", output)
    assert sorted(rank for rank, _ in reports) == ["0", "1"], output
    assert all(fingerprint == planned for _, fingerprint in reports), (planned, output)
