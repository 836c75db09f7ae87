"""Huge worlds on torch's ``fake`` backend: one process plays one rank of up to 16384 and builds the real meshes."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from meshctx import MeshContext, ParallelismSizes, TopologyError, plan_mesh
from tests.torch.torch_worlds import config_for, fake_world

W = 16384
TOPOLOGIES = {
    "fsdp2-pp-hsdp-cp-tp-ep": (
        "fsdp2",
        ParallelismSizes(pp_size=2, dp_replicate_size=2, cp_size=2, tp_size=8, ep_size=16),
        None,
    ),
    "hsdp-tp": ("fsdp2", ParallelismSizes(dp_replicate_size=4, tp_size=8), None),
    "megatron-cp-tp": ("megatron_fsdp", ParallelismSizes(cp_size=2, tp_size=8), None),
    "ddp": ("ddp", ParallelismSizes(), None),
    "subset-even-ranks-ep": ("fsdp2", ParallelismSizes(tp_size=8, ep_size=8), list(range(0, W, 2))),
}


@pytest.mark.torch
@pytest.mark.parametrize("rank", [0, 12345, W - 1])
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_large_world_matches_plan(name: str, rank: int) -> None:
    strategy, sizes, ranks = TOPOLOGIES[name]
    plan = plan_mesh(strategy, sizes, world_size=W, ranks=ranks)
    with fake_world(W, rank):
        ctx = MeshContext.build(config_for(strategy), sizes, ranks=ranks)
        member = ranks is None or rank in ranks
        assert ctx.is_member is member
        assert ctx.built_from is not None and ctx.built_from.fingerprint() == plan.fingerprint()
        if not member:  # the subset's meshes, without groups of this rank (as NeMo hands them out)
            assert ctx.device_mesh is not None and ctx.device_mesh.mesh.flatten().tolist() == list(ranks or ())
            assert (ctx.tp_size, ctx.dp_size, ctx.ep_size) == (plan.sizes.tp, plan.sizes.dp, plan.sizes.ep)
            return
        assert ctx.to_plan().fingerprint() == plan.fingerprint()
        if plan.device_mesh is None:
            assert dist.get_process_group_ranks(ctx.process_group) == list(range(W))
            return
        assert ctx.device_mesh is not None
        assert ctx.device_mesh.mesh.tolist() == plan.mesh_ranks()  # the whole rank tensor
        for axis in plan.axis_names:
            group = plan.group(axis, rank)
            assert ctx.axis_mesh(axis).mesh.tolist() == group, axis
            assert dist.get_process_group_ranks(ctx.axis_group(axis)) == sorted(group), axis
        if plan.moe_mesh is not None:
            assert ctx.moe_mesh is not None
            rows = [plan.group("ep", first) for first in plan.group("ep_shard", plan.group("ep", rank)[0])]
            assert ctx.moe_mesh.mesh.tolist() == rows
        assert (ctx.tp_size, ctx.pp_size, ctx.cp_size, ctx.ep_size) == (
            plan.sizes.tp,
            plan.sizes.pp,
            plan.sizes.cp,
            plan.sizes.ep,
        )
        assert ctx.dp_size == plan.sizes.dp
        assert ctx.parallelize_axis_kwargs() == plan.parallelize_axis_kwargs()
        assert ctx.pipeline_axis_kwargs() == plan.pipeline_axis_kwargs()


@pytest.mark.torch
def test_invalid_topology_raises_before_any_process_group() -> None:
    from torch.distributed.distributed_c10d import _world

    with fake_world(W, 7):
        before = _world.group_count
        with pytest.raises(TopologyError) as err:
            MeshContext.build(config_for("megatron_fsdp"), ParallelismSizes(tp_size=3, pp_size=2, ep_size=5))
        assert _world.group_count == before
        assert {"world_size_not_divisible", "strategy_unsupported_axis"} <= set(err.value.codes)
