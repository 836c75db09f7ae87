"""MoE + HSDP under a real ``torchrun`` (4 gloo processes): the dp axis names meshctx hands NeMo's MoE parallelizer
make its gradient reduction span both replicas; the pre-fix names reduced over one replica only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nemo.nemo_loader import load_nemo
from tests.support.env import REPO, checkout_env

WORKER = Path(__file__).resolve().parent / "hsdp_moe_worker.py"
WORLD = 4


@pytest.mark.torch
@pytest.mark.timeout(300)
def test_hsdp_moe_gradients_are_reduced_across_every_replica(tmp_path: Path) -> None:
    load_nemo()  # skips loudly when NeMo is missing; the workers load it the same way
    env = checkout_env(REPO, OMP_NUM_THREADS="1")  # the checkout's root too: the workers import tests.nemo
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}"]
    run = subprocess.run(
        [*command, str(WORKER), str(tmp_path)], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    reports = sorted((json.loads(p.read_text()) for p in tmp_path.glob("rank*.json")), key=lambda r: r["rank"])
    assert [r["rank"] for r in reports] == list(range(WORLD))
    everyone = sum(1 << r for r in range(WORLD))
    for report in reports:
        assert report["dp_axis_names"] == ["dp_replicate", "dp_shard_cp"]
        assert report["fsdp_mesh"] == {"dims": ["dp_replicate", "dp_shard"], "ranks": [[0, 1], [2, 3]]}
        assert report["replica_group"] == [report["rank"] % 2, report["rank"] % 2 + 2]  # one rank of each replica
        assert report["ep_group"] == [report["rank"] - report["rank"] % 2, report["rank"] - report["rank"] % 2 + 1]
        assert report["hsdp_sum"] == everyone  # every rank of both replicas contributed
        replica = report["rank"] // 2
        assert report["before_fix_sum"] == sum(1 << r for r in (2 * replica, 2 * replica + 1)) != everyone
