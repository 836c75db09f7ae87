"""One rank of a real gloo job: build every case's MeshContext and report what torch built.

Usage: gloo_worker.py STORE_FILE RANK WORLD_SIZE CASES_JSON OUT_JSON. For every case and every axis of its
plan this records the ranks of the axis's process group on this rank (torch sorts them), the axis mesh's rank
order and an all-reduce of the global ranks over the group, so the test compares real communication with the plan.
"""

from __future__ import annotations

import copy
import json
import pickle
import sys
from datetime import timedelta

import torch
import torch.distributed as dist

from meshctx import DDPConfig, FSDP2Config, MegatronFSDPConfig, MeshContext, ParallelismSizes, TopologyError

CONFIGS = {"fsdp2": FSDP2Config, "megatron_fsdp": MegatronFSDPConfig, "mfsdp": MegatronFSDPConfig, "ddp": DDPConfig}


def report(case: dict) -> dict:
    sizes = ParallelismSizes(**case.get("sizes", {}))
    try:
        ctx = MeshContext.build(CONFIGS[case["strategy"]](), sizes, ranks=case.get("ranks"))
    except TopologyError as err:
        return {"error": list(err.codes)}
    plan = ctx.built_from
    assert plan is not None
    out: dict = {"member": ctx.is_member, "planned": plan.fingerprint(), "groups": {}, "order": {}, "sums": {}}
    out["copies"] = copies(ctx)
    if not ctx.is_member:
        out["device_mesh"] = ctx.device_mesh is not None
        out["sizes"] = [ctx.tp_size, ctx.dp_size, ctx.ep_size]
        return out
    out["live"] = ctx.to_plan().fingerprint()
    out["sizes"] = {
        name: getattr(ctx, name)
        for name in ("tp_size", "pp_size", "cp_size", "ep_size", "dp_size", "dp_replicate_size", "dp_shard_size")
    }
    out["kwargs"] = [str(v) for v in ctx.pipeline_axis_kwargs().values()]
    out["mesh"] = ctx.device_mesh.mesh.tolist() if ctx.device_mesh is not None else None
    if ctx.device_mesh is not None:
        groups = {a: ctx.axis_group(a) for a in plan.axis_names}
    else:
        groups = {"dp": ctx.process_group or dist.group.WORLD}  # None: the default group, as in NeMo
    for axis, group in groups.items():
        out["groups"][axis] = dist.get_process_group_ranks(group)
        if ctx.device_mesh is not None:
            out["order"][axis] = ctx.axis_mesh(axis).mesh.tolist()
        value = torch.tensor([dist.get_rank()], dtype=torch.int64)
        dist.all_reduce(value, group=group)
        out["sums"][axis] = int(value.item())
    return out


def copies(ctx: MeshContext) -> dict[str, str]:
    """The plan a pickled and a deep-copied context carry (or the error): a context is a plain value."""
    out = {}
    for name, twin in (("pickle", lambda c: pickle.loads(pickle.dumps(c))), ("deepcopy", copy.deepcopy)):
        try:
            plan = twin(ctx).built_from
            out[name] = plan.fingerprint() if plan is not None else "no plan"
        except Exception as err:
            out[name] = repr(err)
    return out


def main() -> None:
    store, rank, world, cases_file, out_file = sys.argv[1:6]
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=int(rank), world_size=int(world), timeout=timedelta(seconds=90)
    )
    with open(cases_file) as f:
        cases = json.load(f)
    results = [report(case) for case in cases]
    dist.barrier()
    dist.destroy_process_group()
    with open(out_file, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
