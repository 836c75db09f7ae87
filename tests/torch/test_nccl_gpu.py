"""The NCCL path: one process per GPU (torchrun-style env), cuda meshes, per-axis NCCL timeouts.

Runs only where CUDA is present (one process per GPU, up to 8); everything it checks on the mesh side is also
checked on gloo (tests/torch/test_gloo_meshes.py), this adds NCCL groups, device type and timeouts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0

WORKER = r"""
import os
from datetime import timedelta
import torch, torch.distributed as dist
from meshctx import FSDP2Config, MeshContext, ParallelismSizes
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
dist.init_process_group("nccl", timeout=timedelta(seconds=120), device_id=torch.device("cuda", rank))
tp = 2 if world % 2 == 0 else 1
for sizes, ranks in ((ParallelismSizes(tp_size=tp, ep_size=world), None),
                     (ParallelismSizes(tp_size=1), list(range(world))[::-1][: max(1, world // 2)])):
    ctx = MeshContext.build(FSDP2Config(), sizes, timeout_minutes=3, ranks=ranks)
    plan = ctx.built_from
    if not ctx.is_member:
        continue
    assert ctx.device_mesh.device_type == "cuda"
    assert ctx.to_plan().fingerprint() == plan.fingerprint()
    for axis in plan.axis_names:
        group = ctx.axis_group(axis)
        expected = plan.group(axis, rank)
        assert dist.get_process_group_ranks(group) == sorted(expected), (axis, expected)
        timeout = group._get_backend(torch.device("cuda")).options._timeout
        assert timeout == timedelta(minutes=3), (axis, timeout)  # timeout_minutes reached every NCCL group
        value = torch.tensor([rank], device="cuda")
        dist.all_reduce(value, group=group)
        assert int(value.item()) == sum(expected), axis
dist.barrier()
dist.destroy_process_group()
print("ok", rank)
"""


@pytest.mark.gpu
@pytest.mark.torch
@pytest.mark.skipif(GPUS < 1, reason="needs CUDA: an NCCL job runs one process per GPU and this machine has none")
@pytest.mark.timeout(300)
def test_nccl_meshes_match_the_plan(tmp_path: Path) -> None:
    world = min(GPUS, 8)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = []
    for rank in range(world):
        env = dict(
            os.environ,
            PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO / 'service'}",
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=240)
            outputs.append((proc.returncode, out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert all(code == 0 for code, _ in outputs), "\n".join(out[-3000:] for _, out in outputs)
