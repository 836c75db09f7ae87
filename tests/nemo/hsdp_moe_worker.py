"""One rank of a real torchrun job (gloo, CPU): MoE + HSDP built by meshctx, reduced as NeMo's MoE parallelizer would.

Usage: python -m torch.distributed.run --nproc-per-node 4 hsdp_moe_worker.py OUT_DIR. The job is dp_replicate 2 ×
dp_shard 2 with ep 2. The mesh FSDP gets is chosen from ``parallelize_axis_kwargs()["dp_axis_names"]`` by NeMo's
rule (``get_fsdp_dp_mesh`` for the HSDP names, else ``get_submesh``, both NeMo's real code), and a per-rank
"gradient" (``1 << rank``) is reduced over every dimension of it, as HSDP reduces: the sum shows which ranks
contributed. The pre-fix names (``("dp_shard_cp",)``) are reduced too, for contrast.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

import meshctx.mesh
from tests.nemo.nemo_loader import load_nemo


def reduced(mesh: object, rank: int) -> int:
    grad = torch.tensor([1 << rank], dtype=torch.int64)
    for dim in range(mesh.ndim):  # type: ignore[attr-defined]
        dist.all_reduce(grad, group=mesh.get_group(dim))  # type: ignore[attr-defined]
    return int(grad.item())


def main() -> None:
    out = Path(sys.argv[1])
    nemo = load_nemo()
    dist.init_process_group("gloo", timeout=timedelta(seconds=120))
    rank = dist.get_rank()
    sizes = meshctx.mesh.ParallelismSizes(dp_replicate_size=2, ep_size=2)
    ctx = meshctx.mesh.MeshContext.build(nemo.config.FSDP2Config(), sizes)
    names = tuple(ctx.parallelize_axis_kwargs()["dp_axis_names"])  # type: ignore[arg-type]
    if names == ("dp_replicate", "dp_shard_cp"):
        fsdp_mesh = nemo.mesh_utils.get_fsdp_dp_mesh(ctx.device_mesh, *names)
    else:
        fsdp_mesh = nemo.mesh_utils.get_submesh(ctx.device_mesh, names)
    before_fix = nemo.mesh_utils.get_submesh(ctx.device_mesh, ("dp_shard_cp",))
    report = {
        "rank": rank,
        "dp_axis_names": [n.value for n in names],
        "fsdp_mesh": {"dims": list(fsdp_mesh.mesh_dim_names), "ranks": fsdp_mesh.mesh.tolist()},
        "replica_group": sorted(dist.get_process_group_ranks(ctx.axis_group("dp_replicate"))),
        "ep_group": sorted(dist.get_process_group_ranks(ctx.axis_group("ep"))),
        "hsdp_sum": reduced(fsdp_mesh, rank),
        "before_fix_sum": reduced(before_fix, rank),
    }
    dist.barrier()
    dist.destroy_process_group()
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
