"""One process playing one rank of a job on torch's ``fake`` backend, and side-by-side snapshots of a context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.distributed as dist

from meshctx.runtime.torch_compat import flatten_mapping, root_mesh

PROPERTIES = ("tp_size", "pp_size", "cp_size", "ep_size", "dp_size", "dp_replicate_size", "dp_shard_size", "pp_enabled")
POLICY = (
    "strategy_config",
    "moe_parallel_config",
    "activation_checkpointing",
    "reapply_trainability",
    "cp_ring_degree",
    "cp_ulysses_degree",
)
#: Composite meshes NeMo's parallelizers ask ``get_submesh`` for.
SUBMESHES = (("dp_replicate", "dp_shard_cp"), ("dp_replicate", "dp_shard"), ("dp_shard", "cp"))


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except Exception as err:
        return "error", err


def _group(mesh: Any) -> list[int]:
    return sorted(dist.get_process_group_ranks(mesh.get_group()))


def _mesh_view(mesh: Any, member: bool) -> dict[str, Any]:
    names = [str(getattr(n, "value", n)) for n in mesh.mesh_dim_names]
    view: dict[str, Any] = {"names": names, "ranks": mesh.mesh.tolist()}
    if member:
        view["groups"] = {n: _group(mesh[n]) if mesh.ndim > 1 else _group(mesh) for n in names}
    return view


def _read(fn: Callable[[], Any]) -> Any:
    """A value, or the exception type's name (NeMo's sizes raise on ranks outside a rank subset)."""
    kind, value = outcome(fn)
    return value if kind == "ok" else f"raises {type(value).__name__}"


def snapshot(ctx: Any, mesh_utils: Any, rank: int) -> dict[str, Any]:
    """Everything NeMo code can read from a context: properties, both kwargs dicts (values with their reprs, so
    a str where NeMo has an enum member shows), the policy fields, and every axis's ranks and group."""
    out: dict[str, Any] = {name: _read(lambda name=name: getattr(ctx, name)) for name in PROPERTIES}
    for name in ("parallelize_axis_kwargs", "pipeline_axis_kwargs"):
        out[name] = _read(lambda name=name: {k: repr(v) for k, v in getattr(ctx, name)().items()})
    out["_dp_axis_names"] = _read(lambda: repr(ctx._dp_axis_names()))
    out["repr"] = repr(ctx)
    out["policy"] = [getattr(ctx, name) for name in POLICY]
    out["process_group"] = ctx.process_group
    mesh = ctx.device_mesh
    out["device_mesh"] = None
    if mesh is not None:
        member = rank in mesh.mesh.flatten().tolist()
        out["device_mesh"] = _mesh_view(mesh, member)
        # NeMo names dims with MeshAxisName members, meshctx with their str values (docs/nemo-compat.md)
        flattened = sorted(str(getattr(n, "value", n)) for n in flatten_mapping(root_mesh(mesh)))
        out["flattened"] = flattened
        dims = [str(getattr(n, "value", n)) for n in mesh.mesh_dim_names]
        axes = dims + flattened if member else flattened  # torch cannot slice a mesh on a rank outside it
        for axis in axes:
            flat = mesh_utils.get_flat_mesh(mesh, axis)
            out[f"flat:{axis}"] = (flat.mesh.tolist(), _group(flat) if member else None)
        if member:
            for names in SUBMESHES:
                got = outcome(lambda names=names: _mesh_view(mesh_utils.get_submesh(mesh, names), True))
                out[f"submesh:{names}"] = got if got[0] == "ok" else ("error", type(got[1]).__name__)
            got = outcome(lambda: _mesh_view(mesh_utils.get_fsdp_dp_mesh(mesh), True))
            out["get_fsdp_dp_mesh"] = got if got[0] == "ok" else ("error", type(got[1]).__name__)
    moe = ctx.moe_mesh
    out["moe_mesh"] = _mesh_view(moe, rank in moe.mesh.flatten().tolist()) if moe is not None else None
    return out
