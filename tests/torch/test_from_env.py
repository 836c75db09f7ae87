"""``MeshContext.from_env`` in a real launch: ``meshctx render torchrun`` (or ``slurm``) writes the command and the
``MESHCTX_*`` variables, bash runs that very text, torchrun starts 4 gloo processes on 127.0.0.1, and every rank builds
its meshes from the environment alone and reports the plan's fingerprint. (``tests/slurm`` runs the Slurm script under
a real slurmctld; here its torchrun line runs as the one task of a one-node allocation.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshctx import MeshContext
from meshctx.plan import plan_mesh
from meshctx.plan.sizes import ParallelismSizes
from meshctx.runtime.job_env import LaunchEnvError

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "from_env_worker.py"
WORLD = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def job_environment() -> dict[str, str]:
    """This process's environment without any ``MESHCTX_*`` of its own, with the checkout importable and the
    venv's ``torchrun`` first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHCTX_")}
    env["MESHCTX_DATA_DIR"] = os.environ.get("MESHCTX_DATA_DIR", "")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO / "service")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def render(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "render", *args],
        env=job_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def runnable(target: str, text: str) -> str:
    """The rendered text as bash runs it here: torchrun's as printed; Slurm's script for a one-node allocation
    whose first node is this machine (``srun`` starts one task per node, so on one node the task is the line)."""
    if target == "torchrun":
        return text
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    lines = ["head_node=127.0.0.1" if line.startswith("head_node=") else line for line in lines]
    assert lines[-1].startswith("srun torchrun ")
    return "\n".join([*lines[:-1], lines[-1].removeprefix("srun ")])


@pytest.mark.torch
@pytest.mark.timeout(240)
@pytest.mark.parametrize("target", ["torchrun", "slurm"])
def test_every_rank_of_the_rendered_launch_builds_the_planned_mesh(target: str, tmp_path: Path) -> None:
    port = free_port()
    body = render(
        target, "--nnodes", "1", "--nproc-per-node", str(WORLD), "--tp", "2",
        "--master-port", str(port), "--rdzv-id", "from-env", "--json",
        "--", str(WORKER), str(tmp_path), "--lr", "3e-4", "--tp", "9",
    )  # fmt: skip
    planned = body["plan"]["fingerprint"]
    assert planned == plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=WORLD).fingerprint()
    text = body["rendering"]["text"]
    assert f"{port}" in text and "--rdzv-id=from-env" in text
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runnable(target, text)],
        env=job_environment() | {"SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_ID": "4242"},
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    reports = sorted((json.loads(p.read_text()) for p in tmp_path.glob("rank*.json")), key=lambda r: r["rank"])
    assert [r["rank"] for r in reports] == list(range(WORLD))
    for report in reports:
        assert report["world"] == WORLD and report["fingerprint"] == report["env_fingerprint"] == planned
        assert (report["tp"], report["dp_shard"]) == (2, 2)
        assert report["tp_group"] == [report["rank"] - report["rank"] % 2, report["rank"] - report["rank"] % 2 + 1]
        assert report["args"] == ["--lr", "3e-4", "--tp", "9"]  # after --: the script's, not meshctx's
    assert run.stdout.count(f"fingerprint {planned}") == WORLD  # the ranks' lines may interleave


def rendered_env(tp: int, strategy: str = "fsdp2") -> dict[str, str]:
    body = render(
        "torchrun", "--strategy", strategy, "--nnodes", "1", "--nproc-per-node", str(WORLD), "--tp", str(tp), "--json"
    )
    return dict(body["rendering"]["env"]) | {"WORLD_SIZE": str(WORLD)}


@pytest.mark.torch
def test_ddp_builds_from_the_environment_without_a_process_group() -> None:
    env = rendered_env(1, "ddp")
    ctx = MeshContext.from_env(env)
    assert ctx.device_mesh is None and ctx.process_group is None
    assert ctx.fingerprint() == env["MESHCTX_FINGERPRINT"]
    assert ctx.fingerprint() == plan_mesh("ddp", ParallelismSizes(), world_size=WORLD).fingerprint()


def test_a_fingerprint_of_another_plan_is_refused_before_any_group_naming_both() -> None:
    ours, other = rendered_env(2)["MESHCTX_FINGERPRINT"], rendered_env(4)["MESHCTX_FINGERPRINT"]
    with pytest.raises(LaunchEnvError) as info:
        MeshContext.from_env(rendered_env(2) | {"MESHCTX_FINGERPRINT": other})
    [(name, detail)] = info.value.errors
    assert name == "MESHCTX_FINGERPRINT" and other in detail and ours in detail
    assert "render again" in detail


def test_a_config_of_another_strategy_is_refused() -> None:
    from meshctx import MegatronFSDPConfig

    with pytest.raises(LaunchEnvError, match="planned fsdp2 but strategy_config is a megatron_fsdp config"):
        MeshContext.from_env(rendered_env(2), strategy_config=MegatronFSDPConfig())
