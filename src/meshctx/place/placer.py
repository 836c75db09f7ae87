"""``place``: (plan, topology, allocation) → the node order, its crossings, bounds, baselines, launch.

A pure function: no I/O, no clock, no randomness; equal inputs give equal placements. The order is the
best, by the objective (crossings of tp, cp, ep, ... each from the fastest tier up, compared
lexicographically), of the hierarchical order and both baselines, so it is never worse than either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..plan import MeshPlan
from ..plan.problems import Code, Problem
from .crossings import crossings, lower_bounds, plan_classes, unit_ids
from .hostlist import expand_hosts, natural_key
from .launch import MASTER_PORT, build_launch
from .order import hierarchical_order
from .problems import PlacementError, place_error, sample
from .report import AxisPlacement, Crossing, Placement
from .topology import Node, Topology


def check_allocation(plan: MeshPlan, topology: Topology, allocation: Sequence[str]) -> list[Problem]:
    """Every problem of the request at once (an empty list means ``place`` will succeed)."""
    problems: list[Problem] = []
    known = topology.by_name()
    if len(known) != len(topology.nodes):
        repeated = sorted(name for name, count in Counter(topology.names()).items() if count > 1)
        problems.append(
            place_error(
                Code.DUPLICATE_HOST,
                ("topology.nodes",),
                f"The topology lists {len(repeated)} node names more than once: {sample(repeated)}.",
                "Keep one entry per node name in the topology.",
            )
        )
    if not allocation:
        problems.append(
            place_error(
                Code.EMPTY_ALLOCATION,
                ("nodes",),
                "The allocation names no nodes.",
                "Pass --nodes with a hostlist such as gpu-[001-032], or leave it out to use every node.",
            )
        )
        return problems
    duplicates = sorted(host for host, count in Counter(allocation).items() if count > 1)
    if duplicates:
        problems.append(
            place_error(
                Code.DUPLICATE_HOST,
                ("nodes",),
                f"The allocation names {len(duplicates)} hosts more than once: {sample(duplicates)}.",
                "Name each node once; one node runs one node rank with all of its GPUs.",
            )
        )
    unknown = [h for h in dict.fromkeys(allocation) if h not in known]
    if unknown:
        problems.append(
            place_error(
                Code.UNKNOWN_NODE,
                ("nodes",),
                f"{len(unknown)} allocated hosts are not in the topology: {sample(unknown)}.",
                "Fix the host names, or re-import the topology so that it lists them.",
            )
        )
    nodes = [known[h] for h in dict.fromkeys(allocation) if h in known]
    counts: dict[int, list[str]] = {}
    for node in nodes:
        counts.setdefault(node.gpus, []).append(node.name)
    if len(counts) > 1:
        detail = "; ".join(f"{g} GPUs: {sample(names, 3)}" for g, names in sorted(counts.items()))
        problems.append(
            place_error(
                Code.GPU_COUNT_MISMATCH,
                ("nodes", "topology.nodes.gpus"),
                f"The allocated nodes differ in GPU count ({detail}); rank r runs on node r // gpus_per_node, "
                "which needs one count.",
                "Allocate nodes of one GPU count (split the job or restrict --nodes).",
            )
        )
    elif counts and not duplicates:
        (gpus,) = counts
        if plan.cluster is not None and plan.cluster.gpus_per_node != gpus:
            problems.append(
                place_error(
                    Code.GPU_COUNT_MISMATCH,
                    ("cluster.gpus_per_node", "topology.nodes.gpus"),
                    f"The plan was made for {plan.cluster.gpus_per_node} GPUs per node, but the allocated nodes "
                    f"have {gpus}.",
                    f"Plan with --gpus-per-node {gpus}, or allocate nodes with {plan.cluster.gpus_per_node} GPUs.",
                )
            )
        slots = len(allocation)
        if slots * gpus != plan.world_size:
            fit = plan.world_size // gpus
            problems.append(
                place_error(
                    Code.ALLOCATION_SIZE_MISMATCH,
                    ("nodes", "world_size"),
                    f"{slots} nodes × {gpus} GPUs = {slots * gpus} ranks, but the plan has world size "
                    f"{plan.world_size}.",
                    (
                        f"Allocate {fit} nodes of {gpus} GPUs"
                        if plan.world_size % gpus == 0
                        else f"Use a world size that is a multiple of {gpus}"
                    )
                    + f", or plan for world size {slots * gpus}.",
                )
            )
    return problems


def place(
    plan: MeshPlan,
    topology: Topology,
    allocation: Sequence[str] | str | None = None,
    *,
    command: Sequence[str] = ("train.py",),
    master_port: int = MASTER_PORT,
) -> Placement:
    """Order the allocated nodes for ``plan``; raises ``PlacementError`` with every problem found.

    ``allocation`` is a list of host names, a hostlist expression, or ``None`` for every node."""
    hosts = topology.names() if allocation is None else expand_hosts(allocation)
    problems = check_allocation(plan, topology, hosts)
    if problems:
        raise PlacementError(problems)
    known = topology.by_name()
    nodes: list[Node] = [known[h] for h in hosts]
    gpus = nodes[0].gpus
    slots = len(nodes)
    classes = plan_classes(plan, gpus, slots)
    units = unit_ids(nodes)
    natural = sorted(range(slots), key=lambda i: natural_key(nodes[i].name))
    candidates = {
        "hierarchical": hierarchical_order(nodes, classes, natural),
        "lexicographic": sorted(range(slots), key=lambda i: nodes[i].name),
        "natural": natural,
    }
    rows = {name: crossings(classes, units, order) for name, order in candidates.items()}

    def vector(name: str) -> tuple[int, ...]:
        return tuple(c for row in rows[name] for c in row)

    best = min(candidates, key=vector)  # dicts keep insertion order: ties go to the hierarchical order
    bounds = lower_bounds(classes, units, range(slots))
    order = tuple(nodes[i].name for i in candidates[best])
    axes = {
        axis.axis: AxisPlacement(axis.groups, Crossing.of(row), Crossing.of(bound))
        for axis, row, bound in zip(classes, rows[best], bounds)
    }
    baselines = {
        name: {axis.axis: Crossing.of(row) for axis, row in zip(classes, rows[name])}
        for name in ("lexicographic", "natural")
    }
    launch = build_launch(order, gpus, classes, bounds, topology, command, master_port)
    return Placement(order, gpus, axes, baselines, launch)
