"""The gate inside a real Slurm when something around it fails (docs/contract.md "The admission gate never opens by
accident"): a missing or broken meshctx_job.lua, a hung CLI, a CLI that answers with a usage error. slurmctld
keeps running, sbatch does not wait, and jobs that opted in are still checked by job_submit.lua."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm.conftest import Cluster

GOOD = ["--gpus-per-node=8", "--comment=meshctx:tp=8"]
BAD = ["--gpus-per-node=8", "--comment=meshctx:tp=3"]  # 8 ranks are not divisible by tp 3


def _sbatch(cluster: Cluster, options: list[str], **kwargs: object) -> tuple[int, str]:
    done = cluster.run("sbatch", "--hold", "--parsable", *options, "--wrap", "true", **kwargs)  # type: ignore[arg-type]
    found = re.search(r"^(\d+)", done.stdout)
    if done.returncode == 0 and found:
        cluster.run("scancel", found.group(1))
    return done.returncode, done.stderr


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


BROKEN = {"missing": None, "syntax error": "local M = {\nfunction M.parse_comment(\n"}


@pytest.fixture(params=list(BROKEN), ids=list(BROKEN))
def broken_helper(request: pytest.FixtureRequest, slurm_cluster: Cluster) -> Iterator[str]:
    """The cluster's meshctx_job.lua missing or broken while slurmctld (re)starts; restored afterwards."""
    helper = slurm_cluster.dir / "meshctx_job.lua"
    saved = helper.read_text()
    text = BROKEN[request.param]
    if text is None:
        helper.unlink()
    else:
        helper.write_text(text)
    try:
        yield request.param
    finally:
        helper.write_text(saved)
        restarted = slurm_cluster.restart_controller()
        assert restarted.returncode == 0, restarted.stderr[-3000:]


def test_slurmctld_survives_a_missing_or_broken_meshctx_job_lua(slurm_cluster: Cluster, broken_helper: str) -> None:
    log = slurm_cluster.dir / "slurmctld.log"
    before = len(log.read_text(errors="replace").splitlines())
    restarted = slurm_cluster.restart_controller()
    # main: "fatal: failed to initialize job_submit plugin" and slurmctld is gone (every sbatch fails)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    new = log.read_text(errors="replace").splitlines()[before:]
    said = [line for line in new if "meshctx: job_submit.lua cannot use" in line]
    assert len(said) == 1, new[-20:]
    assert not any("fatal" in line for line in new), new[-20:]
    for bypass in (False, True):
        code, err = _sbatch(slurm_cluster, ["--gpus-per-node=8", "--comment=nightly"], bypass=bypass)
        assert code == 0, err  # jobs that did not opt in run as before
        code, err = _sbatch(slurm_cluster, GOOD, bypass=bypass)
        assert code != 0 and "this job cannot be checked" in err, err  # opted in: never admitted unchecked


def test_sbatch_does_not_wait_for_a_hung_cli(slurm_cluster: Cluster, tmp_path: Path) -> None:
    hung = _script(tmp_path / "meshctx", "sleep 300\n")
    started = time.monotonic()
    code, err = _sbatch(slurm_cluster, BAD, env={"MESHCTX_CLI": hung, "MESHCTX_CLI_TIMEOUT": "1"}, timeout=60)
    assert time.monotonic() - started < 20
    assert code != 0 and "1 nodes x 8 processes" in err, err  # job_submit.lua's verdict
    assert "meshctx refused" not in err


def test_a_cli_usage_error_lets_the_job_through_to_job_submit(slurm_cluster: Cluster, tmp_path: Path) -> None:
    usage = _script(tmp_path / "meshctx", 'echo "usage: meshctx [-h] COMMAND" >&2\nexit 2\n')
    env = {"MESHCTX_CLI": usage}
    code, err = _sbatch(slurm_cluster, BAD, env=env)
    assert code != 0 and "1 nodes x 8 processes" in err and "meshctx refused" not in err, err
    code, err = _sbatch(slurm_cluster, ["--nodes=2", "--gpus-per-node=8", "--comment=meshctx:tp=8,dp=2"], env=env)
    assert code == 0, err


def test_a_valid_job_costs_no_cli_run(slurm_cluster: Cluster, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cli = _script(tmp_path / "meshctx", f'echo "$@" >> {marker}\nexit 2\n')
    code, err = _sbatch(slurm_cluster, GOOD, env={"MESHCTX_CLI": cli})
    assert code == 0, err
    assert not marker.exists()  # the shared rules passed it: no CLI start-up (0.25-1 s) on the sbatch
    code, err = _sbatch(slurm_cluster, BAD, env={"MESHCTX_CLI": cli})
    assert code != 0 and marker.read_text().startswith("validate "), err
