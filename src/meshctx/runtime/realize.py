"""Realize a ``MeshPlan`` with torch: the only module of meshctx that creates process groups.

The meshes are built the way NeMo Automodel builds them (``init_device_mesh``, ``_flatten`` for the
data-parallel axes, ``_flatten()._unflatten`` for the MoE mesh), so code written against NeMo's meshes sees
the same objects. Rank subsets need care: ``new_group`` is collective over the default group, so every global
rank must create the same groups in the same order, but torch cannot slice a mesh on a rank outside it. Ranks
outside the subset therefore replay torch's own group creation (``DeviceMesh._init_process_groups``) for
the same layouts, in the same order; they get the subset's root mesh, and flattened and MoE meshes without
groups holding each axis's first group (what NeMo hands out there), so sizes and rank tables read the same.
For a permuted subset (``ranks=[3, 1]``) the
mesh keeps the plan's order, while torch's process group lists its ranks sorted, as ``new_group`` always does.
Timeouts apply to NCCL groups only; gloo groups keep the default group's timeout. As in NeMo, a flattened or
MoE axis spanning the whole job reuses the default group (which has the job's timeout) instead of opening a
second world-sized communicator. DDP over the whole job creates no group (``process_group`` stays ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from ..plan import MeshPlan
from ..plan.axes import MeshAxisName
from .torch_compat import LAYOUTS, flatten_mapping, fresh_flatten_mapping, replay_flatten_groups

A = MeshAxisName

#: The device axes of one pipeline stage, flattened and reshaped into the MoE mesh (NeMo's order).
STAGE_AXES: tuple[str, ...] = (A.DP_REPLICATE.value, A.DP_SHARD.value, A.CP.value, A.TP.value)

BackendConfig = tuple[str, Any]


@dataclass(frozen=True)
class RealizedMeshes:
    """What one rank holds after ``realize``: its meshes (``None`` outside the plan's ranks)."""

    device_mesh: DeviceMesh | None
    moe_mesh: DeviceMesh | None
    process_group: dist.ProcessGroup | None
    member: bool


def device_type_for_backend(backend: str) -> str:
    """NeMo's rule: ``cuda`` when the backend uses NCCL (``nccl``, ``cpu:gloo,cuda:nccl``) and CUDA is available,
    else ``cpu`` (``gloo``, ``mpi``, ``ucc``, ``fake``, and ``xccl``/``hccl`` too: pass ``device_type`` for an
    XPU or HPU mesh)."""
    return "cuda" if "nccl" in backend.lower() and torch.cuda.is_available() else "cpu"


def nccl_timeout_override(device_type: str, timeout_minutes: float | None) -> BackendConfig | None:
    """``("nccl", options)`` carrying the timeout for every group of a CUDA mesh; ``None`` elsewhere."""
    if timeout_minutes is None or device_type != "cuda" or not dist.is_nccl_available():
        return None
    options = dist.ProcessGroupNCCL.Options()
    options._timeout = timedelta(minutes=timeout_minutes)
    return ("nccl", options)


def realize(plan: MeshPlan, *, device_type: str | None = None, timeout_minutes: float | None = None) -> RealizedMeshes:
    """Create the process groups and meshes of ``plan``; every global rank of the job must call this."""
    if not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialized: call torch.distributed.init_process_group first")
    world, rank = dist.get_world_size(), dist.get_rank()
    ranks = list(plan.ranks) if plan.ranks is not None else list(range(plan.world_size))
    if max(ranks) >= world:
        raise ValueError(
            f"the plan places ranks up to {max(ranks)} but this job has {world} ranks (0..{world - 1}); "
            f"plan for world_size={world}"
        )
    device_type = device_type or device_type_for_backend(str(dist.get_backend()))
    override = nccl_timeout_override(device_type, timeout_minutes)
    member = rank in set(ranks)
    if plan.device_mesh is None:
        return RealizedMeshes(None, None, _ddp_group(ranks, world, override), member)

    if not LAYOUTS:
        return _realize_legacy(plan, ranks, world, member, device_type, override)
    axes = tuple(a.value for a in plan.device_mesh.axes)
    shape = plan.device_mesh.shape
    if ranks == list(range(world)):
        root = init_device_mesh(
            device_type,
            shape,
            mesh_dim_names=axes,
            backend_override=dict.fromkeys(axes, override) if override else None,
        )
    else:
        rank_tensor = torch.tensor(ranks, dtype=torch.int).reshape(shape)
        root = DeviceMesh(
            device_type,
            rank_tensor,
            mesh_dim_names=axes,
            backend_override=(override,) * len(axes) if override else None,
        )
    for name, sources in plan.device_mesh.flattened.items():
        axes_of = tuple(s.value for s in sources)
        flat_override = None if plan.size(name.value) == world else override
        if _flatten(root, axes_of, name.value, flat_override, member) is None:
            _register_groupless(root, name.value, plan.group(name.value, plan.rank_at(0)), device_type)
    moe_mesh = None
    if plan.moe_mesh is not None:
        moe_axes = tuple(a.value for a in plan.moe_mesh.axes)
        stage_size = plan.sizes.ep * plan.sizes.ep_shard
        stage_override = None if stage_size == world else override
        stage = _flatten(root, STAGE_AXES, "_".join(STAGE_AXES), stage_override, member)
        # the override goes to the MoE axes that do not span the whole world
        over = [a for a, n in zip(moe_axes, plan.moe_mesh.shape) if n != world] if override else []
        if member:
            assert stage is not None
            moe_mesh = stage._unflatten(
                0,
                plan.moe_mesh.shape,
                moe_axes,
                backend_override=dict.fromkeys(over, override) if override and over else None,
            )
        else:
            per_axis = tuple(override if a in over else None for a in moe_axes)
            _replay_unflatten(root, STAGE_AXES, plan.moe_mesh.shape, moe_axes, per_axis)
            first_stage = torch.tensor([plan.rank_at(p) for p in range(stage_size)], dtype=torch.int)
            moe_mesh = DeviceMesh(
                device_type, first_stage.reshape(plan.moe_mesh.shape), mesh_dim_names=moe_axes, _init_backend=False
            )
    return RealizedMeshes(root, moe_mesh, None, member)


def _register_groupless(root: DeviceMesh, name: str, ranks: list[int], device_type: str) -> None:
    """A flattened axis on a rank outside the mesh: its first group's ranks, no process group (as in NeMo)."""
    flat = DeviceMesh(device_type, torch.tensor(ranks, dtype=torch.int), mesh_dim_names=(name,), _init_backend=False)
    flatten_mapping(root).setdefault(name, flat)


def _ddp_group(ranks: list[int], world: int, override: BackendConfig | None) -> dist.ProcessGroup | None:
    if ranks == list(range(world)):
        return None  # the default group, as NeMo leaves it (its checkpointer tests ``process_group is None``)
    backend, options = override if override else (None, None)
    timeout = options._timeout if options is not None else None
    group = dist.new_group(ranks=ranks, backend=backend, pg_options=options, timeout=timeout)
    return group if dist.get_rank() in ranks else None


def _stage_layout(root: DeviceMesh, axes: tuple[str, ...]) -> Any:
    """The flat layout of ``axes`` of ``root`` merged into one dimension (torch's ``_flatten`` layout)."""
    from torch.distributed._mesh_layout import _MeshLayout

    names = list(root.mesh_dim_names or ())
    return _MeshLayout([root._layout[names.index(a)] for a in axes]).collapse()


def _flatten(
    root: DeviceMesh, axes: tuple[str, ...], name: str, override: BackendConfig | None, member: bool
) -> DeviceMesh | None:
    """``root[axes]._flatten(name)`` on members; the same group creation, without a mesh, elsewhere."""
    if member:
        return root[axes]._flatten(name, backend_override=override)
    from torch.distributed._mesh_layout import _MeshLayout

    flat = _MeshLayout([_stage_layout(root, axes)])
    DeviceMesh._init_process_groups(flat, root._rank_map, (name,), (override or (None, None),))
    return None


def _replay_unflatten(
    root: DeviceMesh,
    axes: tuple[str, ...],
    sizes: tuple[int, ...],
    names: tuple[str, ...],
    overrides: tuple[BackendConfig | None, ...],
) -> None:
    """The groups ``flattened._unflatten(0, sizes, names)`` creates, for a rank outside the mesh."""
    from torch.distributed._mesh_layout import _MeshLayout

    inner = _MeshLayout.from_sizes_strides(tuple(sizes))
    partial = _stage_layout(root, axes).composition(inner)
    DeviceMesh._init_process_groups(partial, root._rank_map, names, tuple(o or (None, None) for o in overrides))


def _realize_legacy(
    plan: MeshPlan, ranks: list[int], world: int, member: bool, device_type: str, override: BackendConfig | None
) -> RealizedMeshes:
    """``realize`` on torch before 2.13 (no layout algebra to replay 2.13's groups with; no ``_unflatten`` before
    2.10): the root as NeMo builds it; each flattened axis is torch's ``_flatten`` on members, and elsewhere the
    same groups (``replay_flatten_groups``; on 2.9 one mesh per group, what ``_flatten`` creates); the MoE mesh
    is one ``(ep_shard, ep)`` mesh per pipeline stage, created in stage order on every rank, the one holding
    this rank kept (as NeMo does for rank subsets)."""
    assert plan.device_mesh is not None
    axes = tuple(a.value for a in plan.device_mesh.axes)
    shape = plan.device_mesh.shape
    no_override = (None, None)
    rank_tensor = torch.tensor(ranks, dtype=torch.int).reshape(shape)
    if ranks == list(range(world)):
        overrides: dict[int | str, Any] | None = dict.fromkeys(axes, override) if override else None
        root = init_device_mesh(device_type, shape, mesh_dim_names=axes, backend_override=overrides)
    else:
        per_dim = (override,) * len(axes) if override else None
        root = DeviceMesh(device_type, rank_tensor, mesh_dim_names=axes, backend_override=per_dim)
    fresh_flatten_mapping(root)
    for name, sources in plan.device_mesh.flattened.items():
        flat_override = None if plan.size(name.value) == world else override
        axes_of = tuple(s.value for s in sources)
        _legacy_flatten(root, rank_tensor, axes_of, name.value, flat_override, member, register=True)
        if not member:
            _register_groupless(root, name.value, plan.group(name.value, plan.rank_at(0)), device_type)
    moe_mesh = None
    if plan.moe_mesh is not None:
        moe_axes = tuple(a.value for a in plan.moe_mesh.axes)
        per_axis = tuple(override if override and n != world else no_override for n in plan.moe_mesh.shape)
        stage_size = plan.sizes.ep * plan.sizes.ep_shard
        # NeMo flattens the stage first (its helper axis, registered on members), then unflattens it
        stage_override = None if stage_size == world else override
        _legacy_flatten(root, rank_tensor, STAGE_AXES, "_".join(STAGE_AXES), stage_override, member, register=False)
        rank = dist.get_rank()
        for stage in range(plan.sizes.pp):
            stage_ranks = [plan.rank_at(p) for p in range(stage * stage_size, (stage + 1) * stage_size)]
            stage_mesh = DeviceMesh(
                device_type,
                torch.tensor(stage_ranks, dtype=torch.int).reshape(plan.moe_mesh.shape),
                mesh_dim_names=moe_axes,
                backend_override=per_axis,
            )
            if rank in stage_ranks:
                moe_mesh = stage_mesh
        if not member:  # the first stage's ranks, without groups (what NeMo hands out there)
            first_stage = torch.tensor([plan.rank_at(p) for p in range(stage_size)], dtype=torch.int)
            moe_mesh = DeviceMesh(
                device_type, first_stage.reshape(plan.moe_mesh.shape), mesh_dim_names=moe_axes, _init_backend=False
            )
    return RealizedMeshes(root, moe_mesh, None, member)


def _legacy_flatten(
    root: DeviceMesh,
    rank_tensor: torch.Tensor,
    axes: tuple[str, ...],
    name: str,
    override: BackendConfig | None,
    member: bool,
    *,
    register: bool,
) -> None:
    """``root[axes]._flatten(name)`` on members (registered on the root, where torch 2.9 does not do it itself
    and ``register``), and elsewhere the same groups."""
    if member:
        flat = root[axes]._flatten(name, backend_override=override)
        if register:
            flatten_mapping(root).setdefault(name, flat)
        return
    if replay_flatten_groups(root, axes, name, override):
        return
    names = list(root.mesh_dim_names or ())
    kept = [names.index(a) for a in axes]
    rest = [d for d in range(len(names)) if d not in kept]
    size = 1
    for d in kept:
        size *= rank_tensor.shape[d]
    for group in rank_tensor.permute(*rest, *kept).reshape(-1, size):  # what torch 2.9's _flatten creates
        DeviceMesh(root.device_type, group, mesh_dim_names=(name,), backend_override=(override or (None, None),))
