"""Helpers for tests that build real torch meshes: gloo worlds in subprocesses, fake worlds in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
from torch.testing._internal.distributed.fake_pg import FakeStore  # noqa: E402

from meshctx import DDPConfig, FSDP2Config, MegatronFSDPConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
#: ``MeshContext.build`` takes config objects, as NeMo's does; tests name strategies for brevity.
CONFIGS = {"fsdp2": FSDP2Config, "megatron_fsdp": MegatronFSDPConfig, "mfsdp": MegatronFSDPConfig, "ddp": DDPConfig}


def config_for(strategy: str) -> object:
    return CONFIGS[strategy]()


WORKER = Path(__file__).resolve().parent / "gloo_worker.py"


@contextmanager
def fake_world(world_size: int, rank: int) -> Iterator[None]:
    """This process plays ``rank`` of a ``world_size`` job on torch's ``fake`` backend, as a fresh process would:
    torch before 2.10 keeps every flattened mesh in a process-wide table and hands it out again for an equal
    mesh, groups of the destroyed job included, so that table starts empty (NeMo's meshes read it)."""
    from torch.distributed import device_mesh

    resources = getattr(device_mesh, "_mesh_resources", None)
    if resources is not None and hasattr(resources, "root_to_flatten_mapping"):
        resources.__init__()
    dist.init_process_group("fake", rank=rank, world_size=world_size, store=FakeStore())
    try:
        yield
    finally:
        dist.destroy_process_group()


def run_gloo_world(world_size: int, cases: list[dict[str, object]], tmp: Path, timeout: float = 240) -> list[dict]:
    """Run ``gloo_worker.py``: ``world_size`` real processes (forked after one torch import) on one gloo job;
    returns each rank's report."""
    cases_file = tmp / "cases.json"
    cases_file.write_text(json.dumps(cases))
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO / 'service'}", OMP_NUM_THREADS="1")
    args = [sys.executable, str(WORKER), str(tmp / "store"), str(world_size), str(cases_file), str(tmp)]
    with open(tmp / "launcher.log", "w") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code: int | str = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = "timeout"
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every rank it forked
            proc.wait()
    failed = [rank for rank in range(world_size) if not (tmp / f"rank{rank}.json").exists()]
    if code != 0 or failed:
        logs = "\n".join(
            f"--- rank {r}:\n{(tmp / f'rank{r}.log').read_text()[-3000:] if (tmp / f'rank{r}.log').exists() else ''}"
            for r in failed
        )
        pytest.fail(
            f"gloo world of {world_size} failed ({code}), ranks {failed}:\n{(tmp / 'launcher.log').read_text()[-3000:]}"
            f"\n{logs}"
        )
    return [json.loads((tmp / f"rank{rank}.json").read_text()) for rank in range(world_size)]
