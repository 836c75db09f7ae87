"""Read live torch meshes back into a ``MeshPlan``, so a job can prove it built what was approved.

Everything comes from torch's own bookkeeping: the axes and shape of the root mesh, its rank map, the
layouts torch keeps for every root axis (``mesh._layout``), for every flattened axis registered on the root
(``_flatten_mapping``) and for the MoE mesh; before torch 2.13, which keeps no layouts, each layout is derived
from the ranks of the axis's group (``torch_compat``). Equal fingerprints therefore mean equal process groups.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh

from ..plan import AxisLayout, MeshPlan, MeshSpec, ResolvedSizes
from ..plan.axes import VALID_AXIS_NAMES, MeshAxisName
from ..plan.strategies import RULES, Strategy, strategy_of_axes
from .torch_compat import dim_layout, flatten_mapping, rank_map, root_mesh

A = MeshAxisName


def plan_from_meshes(
    device_mesh: DeviceMesh | None, moe_mesh: DeviceMesh | None, process_group: Any = None
) -> MeshPlan:
    """The topology the given meshes (or, without meshes, the data-parallel group) actually have."""
    if device_mesh is None:
        if moe_mesh is not None:
            raise ValueError("a MoE mesh without a device mesh does not describe a topology meshctx builds")
        return _ddp_plan(process_group)
    root = root_mesh(device_mesh)
    names = [str(getattr(a, "value", a)) for a in root.mesh_dim_names or ()]
    strategy = strategy_of_axes(tuple(A(a) for a in names)) if set(names) <= VALID_AXIS_NAMES else None
    if strategy is None:
        expected = [[a.value for a in rules.mesh_axes] for rules in RULES.values() if rules.mesh_axes is not None]
        raise ValueError(
            f"the root mesh has axes {names}, which are not a meshctx topology; expected one of {expected} "
            "(the mesh init_device_mesh built, every axis named, size-1 axes included)"
        )
    axes = tuple(A(a) for a in names)
    shape: tuple[int, ...] = tuple(int(n) for n in root.shape)
    dims = dict(zip(axes, shape))

    ranks = rank_map(root)
    positions = {r: p for p, r in enumerate(ranks)}
    layouts = {a.value: dim_layout(root, i, positions) for i, a in enumerate(axes)}
    flattened: dict[MeshAxisName, tuple[MeshAxisName, ...]] = {}
    for name, flat_mesh in flatten_mapping(root).items():
        if name not in VALID_AXIS_NAMES:
            continue  # helper meshes such as NeMo's dp_replicate_dp_shard_cp_tp are not axes
        sources = RULES[strategy].flattened.get(A(name))
        layout = dim_layout(flat_mesh, 0, positions)
        if sources is None or layout != _merged(layouts, sources):
            raise ValueError(
                f"flattened axis {name!r} has layout {layout}, which is not the merge of the axes meshctx flattens "
                f"into it ({[s.value for s in sources or ()]})"
            )
        flattened[A(name)] = sources
        layouts[name] = layout

    ep = ep_shard = 1
    moe_spec = None
    if moe_mesh is not None:
        moe_axes = tuple(A(a) for a in moe_mesh.mesh_dim_names or ())
        moe_spec = MeshSpec(moe_axes, tuple(moe_mesh.shape))
        for i, a in enumerate(moe_axes):
            layouts[a.value] = dim_layout(moe_mesh, i, positions)
        moe_dims = dict(zip(moe_axes, moe_spec.shape))
        ep, ep_shard = moe_dims.get(A.EP, 1), moe_dims.get(A.EP_SHARD, 1)

    # fsdp2 shards dp over (dp_replicate, dp_shard); Megatron-FSDP's dp axis is all shard, and it has no pp.
    replicate, shard = dims.get(A.DP_REPLICATE, 1), dims.get(A.DP_SHARD, dims.get(A.DP, 1))
    pp = dims.get(A.PP, 1)
    sizes = ResolvedSizes(replicate * shard, replicate, shard, dims[A.TP], pp, dims[A.CP], ep, ep_shard)
    return _plan(strategy, ranks, sizes, MeshSpec(axes, shape, flattened), moe_spec, layouts)


def _merged(layouts: dict[str, AxisLayout], sources: tuple[MeshAxisName, ...]) -> AxisLayout:
    sizes: list[int] = []
    strides: list[int] = []
    for source in sources:
        sizes.extend(layouts[source.value].sizes)
        strides.extend(layouts[source.value].strides)
    return AxisLayout.of(sizes, strides)


def _ddp_plan(process_group: Any) -> MeshPlan:
    if not dist.is_initialized():
        raise RuntimeError("a context without meshes is data parallel over torch.distributed, which is not initialized")
    group = process_group if process_group is not None else dist.group.WORLD
    ranks = dist.get_process_group_ranks(group)
    world = len(ranks)
    sizes = ResolvedSizes(world, world, 1, 1, 1, 1, 1, 1)
    layouts = {A.DP.value: AxisLayout.of((world,), (1,))}
    return _plan(Strategy.DDP, ranks, sizes, None, None, layouts)


def _plan(
    strategy: Strategy,
    rank_map: list[int],
    sizes: ResolvedSizes,
    device_mesh: MeshSpec | None,
    moe_mesh: MeshSpec | None,
    layouts: dict[str, AxisLayout],
) -> MeshPlan:
    # Identity ranks are stored as None, exactly as MeshPlan.build does, so fingerprints compare.
    ranks = None if rank_map == list(range(len(rank_map))) else tuple(rank_map)
    return MeshPlan(strategy, len(rank_map), ranks, sizes, device_mesh, moe_mesh, layouts)
