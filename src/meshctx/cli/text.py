"""Human-readable text for validation reports and plans.

Everything here works on the wire dicts (``ValidationReport.to_dict()``, ``MeshPlan.to_dict()``,
rank views), so the CLI prints the same text whether the answer was computed locally or came from
a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from ..plan.sizes import SIZE_TABLE


def suggestion_flags(sizes: Mapping[str, Any]) -> str:
    """The flags that give a suggested size set (degrees of 1 left out; a fixed dp always shown)."""
    parts = []
    for field in SIZE_TABLE:
        value = sizes.get(field.name)
        if value is None or (value == 1 and field.name != "dp_size"):
            continue
        parts.append(f"{field.flag} {value}")
    return " ".join(parts) or "(all degrees 1)"


def _problem_lines(problem: Mapping[str, Any]) -> list[str]:
    fields = ", ".join(problem["fields"])
    return [
        f"{problem['severity']}: {problem['code']} ({fields})",
        f"  {problem['message']}",
        f"  hint: {problem['hint']}",
    ]


def plan_lines(plan: Mapping[str, Any]) -> list[str]:
    sizes = plan["sizes"]
    lines = []
    mesh = plan.get("device_mesh")
    if mesh:
        axes = " × ".join(mesh["axes"])
        shape = " × ".join(str(s) for s in mesh["shape"])
        lines.append(f"  device mesh  ({axes}) = ({shape})")
        for name, sources in mesh.get("flattened", {}).items():
            size = plan["layouts"][name]["size"]
            lines.append(f"  flattened    {name} = {' · '.join(sources)} ({size})")
    else:
        lines.append(f"  device mesh  none (pure data parallelism over {plan['world_size']} ranks)")
    moe = plan.get("moe_mesh")
    if moe:
        shape = " × ".join(str(s) for s in moe["shape"])
        lines.append(f"  moe mesh     ({' × '.join(moe['axes'])}) = ({shape}) per pipeline stage")
    lines.append("  sizes        " + " ".join(f"{k}={v}" for k, v in sizes.items()))
    if plan.get("ranks") is not None:
        lines.append(f"  ranks        {_compact_ranks(plan['ranks'])}")
    cluster = plan.get("cluster")
    if cluster:
        spans = ", ".join(f"{axis} {entry['nodes']}" for axis, entry in cluster["spans"].items())
        procs = f" ({cluster['nproc_per_node']} processes each)" if cluster.get("nproc_per_node") else ""
        lines.append(
            f"  nodes        {cluster['nodes']} × {cluster['gpus_per_node']} GPUs{procs}; nodes per group: {spans}"
        )
    lines.append(f"  fingerprint  {plan['fingerprint']}")
    return lines


def _compact_ranks(ranks: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 8]`` → ``0-3,8``."""
    runs: list[str] = []
    start: int | None = None
    prev: int | None = None
    for r in [*ranks, None]:
        if start is not None and prev is not None and (r is None or r != prev + 1):
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if r is not None and start is None:
            start = r
        prev = r
    return ",".join(runs)


def report_text(request: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    """The ``meshctx validate`` output for one report."""
    plan = report.get("plan")
    world = f"{plan['world_size']} ranks" if plan else _world_words(request)
    count = len(report["problems"])
    verdict = "VALID" if report["valid"] else f"INVALID ({count} problem{'' if count == 1 else 's'})"
    lines = [f"{request.get('strategy', 'fsdp2')} on {world}: {verdict}"]
    if plan:
        lines += plan_lines(plan)
    for problem in report["problems"]:
        lines += _problem_lines(problem)
    for warning in report["warnings"]:
        lines += _problem_lines(warning)
    world_sizes = report.get("world_sizes")
    if world_sizes:
        lines.append("elastic range:")
        for entry in world_sizes:
            codes = ", ".join(sorted({p["code"] for p in entry["problems"]}))
            status = "valid" if entry["valid"] else f"invalid ({codes})"
            lines.append(f"  nnodes {entry['nnodes']:>4}  world_size {entry['world_size']:>7}  {status}")
    if report["suggestions"]:
        lines.append("suggestions:")
        for i, suggestion in enumerate(report["suggestions"], 1):
            lines.append(f"  {i}. {suggestion_flags(suggestion['sizes'])}    # {suggestion['reason']}")
    return "\n".join(lines)


def _world_words(request: Mapping[str, Any]) -> str:
    """The world as the request gave it, e.g. ``64 ranks``, ``2 nodes × 8 ranks``, ``world_size 0``."""
    world_size = request.get("world_size")
    if world_size is not None:
        return f"{world_size} ranks" if isinstance(world_size, int) and world_size >= 1 else f"world_size {world_size}"
    if request.get("nnodes") is not None:
        return f"{request['nnodes']} nodes × {request.get('nproc_per_node')} ranks"
    if request.get("ranks") is not None:
        return f"{len(request['ranks'])} ranks"
    return "no world (give world_size, nnodes × nproc_per_node or ranks)"


def layout_text(plan: Mapping[str, Any]) -> str:
    """The ``meshctx layout`` output: the mesh and each axis's layout, and every group when present."""
    lines = [f"{plan['strategy']} on {plan['world_size']} ranks", *plan_lines(plan)]
    lines.append("axes (size, CuTe layout sizes:strides over mesh positions):")
    for name, layout in plan["layouts"].items():
        shape = ",".join(map(str, layout["sizes"])) or "1"
        stride = ",".join(map(str, layout["strides"])) or "0"
        lines.append(f"  {name:<13} {layout['size']:>7}  ({shape}):({stride})")
    groups = plan.get("groups")
    if groups:
        lines.append("groups:")
        for name, members in groups.items():
            lines.append(f"  {name} ({len(members)} groups):")
            lines += [f"    {_compact_ranks(g) if len(g) > 8 else g}" for g in members]
    return "\n".join(lines)


def group_text(members: Sequence[int] | Mapping[str, Any], *, width: int = 72) -> str:
    """One rank's group, short at any size: a small list as it is; a long one as its runs (``0-7,16-23``) when
    they are short, else first … last with the count and the step; the CuTe form (``{"start", "sizes",
    "strides"}``, sent for groups above 4,096 members) as its count, start and layout."""
    if isinstance(members, Mapping):
        sizes, strides = list(members["sizes"]), list(members["strides"])
        count = 1
        for size in sizes:
            count *= size
        layout = f"({','.join(map(str, sizes))}):({','.join(map(str, strides))})"
        return f"{count} ranks from {members['start']}, layout {layout}"
    if len(members) <= 16:
        return str(list(members))
    runs = _compact_ranks(members)
    if len(runs) <= width:
        return f"{runs} ({len(members)} ranks)"
    steps = {b - a for a, b in pairwise(members)}
    step = f", step {steps.pop()}" if len(steps) == 1 else ""
    head = ", ".join(map(str, members[:4]))
    return f"[{head}, …, {members[-1]}] ({len(members)} ranks{step})"


def rank_view_text(view: Mapping[str, Any]) -> str:
    lines = [f"rank {view['rank']}:", f"  {'axis':<13} {'coord':>5}  group"]
    for name, coordinate in view["coordinates"].items():
        lines.append(f"  {name:<13} {coordinate:>5}  {group_text(view['groups'][name])}")
    return "\n".join(lines)
