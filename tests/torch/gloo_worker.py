"""The ranks of a real gloo job: build every case's MeshContext and report what torch built.

Usage: gloo_worker.py STORE_FILE WORLD_SIZE CASES_JSON OUT_DIR. This process imports torch once, then forks one
process per rank (none has a process group before it joins the job); rank R writes OUT_DIR/rankR.json and its
output to OUT_DIR/rankR.log; the exit status is 0 when every rank exited 0. For every case and every axis of its
plan this records the ranks of the axis's process group on this rank (torch sorts them), the axis mesh's rank
order and an all-reduce of the global ranks over the group, so the test compares real communication with the plan.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
import traceback
from datetime import timedelta
from pathlib import Path

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


def rank_main(store: str, rank: int, world: int, cases: list[dict], out_dir: Path) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=timedelta(seconds=90)
    )
    results = [report(case) for case in cases]
    dist.barrier()
    dist.destroy_process_group()
    (out_dir / f"rank{rank}.json").write_text(json.dumps(results))


def main() -> int:
    """Fork the ranks (torch is imported once, not once per rank: on a small machine that is most of the cost)."""
    store, world, cases_file, out = sys.argv[1:5]
    out_dir = Path(out)
    cases = json.loads(Path(cases_file).read_text())
    sys.stdout.flush()
    sys.stderr.flush()
    children = []
    for rank in range(int(world)):
        pid = os.fork()
        if pid == 0:  # the rank: its output to its own log, its exit status says whether it finished
            code = 1
            try:
                log = os.open(out_dir / f"rank{rank}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                rank_main(store, rank, int(world), cases, out_dir)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
