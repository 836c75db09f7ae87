"""An independent reference for the planner: enumerate groups from an explicit row-major rank tensor.

Nothing here uses layouts or strides; groups come from varying tensor indices, the way one would
draw the mesh by hand, so agreement with ``MeshPlan`` is evidence rather than a tautology.
"""

from __future__ import annotations

from itertools import product
from math import prod

FSDP2_AXES = ("pp", "dp_replicate", "dp_shard", "cp", "tp")
FSDP2_FLATTENED = {
    "dp": ("dp_replicate", "dp_shard"),
    "dp_shard_cp": ("dp_shard", "cp"),
    "dp_cp": ("dp_replicate", "dp_shard", "cp"),
}
MEGATRON_AXES = ("dp", "cp", "tp")


def reference_groups(
    axes: tuple[str, ...], shape: tuple[int, ...], ranks: list[int], sources: tuple[str, ...]
) -> list[list[int]]:
    """Groups of the axis made of ``sources``: vary those indices (row-major among them), fix the rest."""
    assert len(ranks) == prod(shape)
    tensor = {}
    for flat, index in enumerate(product(*(range(n) for n in shape))):
        tensor[index] = ranks[flat]
    varying = [axes.index(s) for s in sources]
    fixed = [i for i in range(len(axes)) if i not in varying]
    groups = []
    for fixed_index in product(*(range(shape[i]) for i in fixed)):
        group = []
        for varying_index in product(*(range(shape[i]) for i in varying)):
            index = [0] * len(axes)
            for i, v in zip(fixed, fixed_index):
                index[i] = v
            for i, v in zip(varying, varying_index):
                index[i] = v
            group.append(tensor[tuple(index)])
        groups.append(group)
    return sorted(groups)


def reference_moe_groups(shape: tuple[int, ...], ranks: list[int], ep: int) -> dict[str, list[list[int]]]:
    """Per pipeline stage: its ranks in (dp_replicate, dp_shard, cp, tp) order, as rows of length ep."""
    pp = shape[0]
    per_stage = len(ranks) // pp
    ep_groups, ep_shard_groups = [], []
    for stage in range(pp):
        stage_ranks = ranks[stage * per_stage : (stage + 1) * per_stage]
        rows = [stage_ranks[i : i + ep] for i in range(0, per_stage, ep)]
        ep_groups += rows
        ep_shard_groups += [[row[j] for row in rows] for j in range(ep)]
    return {"ep": sorted(ep_groups), "ep_shard": sorted(ep_shard_groups)}


def reference_all_groups(strategy: str, sizes: dict[str, int], ranks: list[int]) -> dict[str, list[list[int]]]:
    if strategy == "ddp":
        return {"dp": [list(ranks)]}
    if strategy == "megatron_fsdp":
        shape = (sizes["dp"], sizes["cp"], sizes["tp"])
        out = {axis: reference_groups(MEGATRON_AXES, shape, ranks, (axis,)) for axis in MEGATRON_AXES}
        if sizes["cp"] > 1:
            out["dp_cp"] = reference_groups(MEGATRON_AXES, shape, ranks, ("dp", "cp"))
        return out
    shape = (sizes["pp"], sizes["dp_replicate"], sizes["dp_shard"], sizes["cp"], sizes["tp"])
    out = {axis: reference_groups(FSDP2_AXES, shape, ranks, (axis,)) for axis in FSDP2_AXES}
    for name, sources in FSDP2_FLATTENED.items():
        out[name] = reference_groups(FSDP2_AXES, shape, ranks, sources)
    if sizes["ep"] > 1:
        out.update(reference_moe_groups(shape, ranks, sizes["ep"]))
    return out
