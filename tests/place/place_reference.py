"""An independent reference for placement: crossings recomputed from ``MeshPlan.group`` and a
brute-force search over every node order.

Nothing here uses slot classes, layouts or the lower-bound formula: groups come from asking the plan
for each rank's group, units from the nodes' fields, so agreement with ``meshctx.place`` is evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations

from meshctx.place import PRIORITY, Topology
from meshctx.plan import MeshPlan

TIERS = ("node", "nvlink_domain", "leaf", "spine")


def reference_groups(plan: MeshPlan, axis: str) -> list[frozenset[int]]:
    """Every distinct group of ``axis``, found by asking the plan for each rank's group."""
    ranks = plan.ranks if plan.ranks is not None else range(plan.world_size)
    return list({frozenset(plan.group(axis, r)) for r in ranks})


def reference_axes(plan: MeshPlan) -> list[str]:
    present = [a for a in plan.axis_names if plan.size(a) > 1]
    return [a for a in PRIORITY if a in present] + sorted(a for a in present if a not in PRIORITY)


def unit_of(topology: Topology, host: str, tier: str) -> str:
    """A leaf is named by its path (spine, then leaf): equal leaf names under different spines, or under a
    known and a missing spine, are different leaves. A missing value is a unit of its own."""
    node = topology.by_name()[host]
    if tier == "node":
        return host
    value = getattr(node, tier)
    if value is None:
        return f"own:{host}"
    if tier == "leaf":
        return f"{node.spine if node.spine is not None else '(no spine)'}/{value}"
    return str(value)


def reference_crossing(
    plan: MeshPlan, topology: Topology, order: Sequence[str], gpus_per_node: int
) -> dict[str, tuple[int, ...]]:
    """Per axis, per tier: how many groups have ranks in more than one unit."""
    out = {}
    for axis in reference_axes(plan):
        row = []
        for tier in TIERS:
            crossed = 0
            for group in reference_groups(plan, axis):
                units = {unit_of(topology, order[r // gpus_per_node], tier) for r in group}
                crossed += len(units) > 1
            row.append(crossed)
        out[axis] = tuple(row)
    return out


def all_vectors(
    plan: MeshPlan, topology: Topology, hosts: Sequence[str], gpus_per_node: int
) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """(order, objective vector) for every permutation of ``hosts`` (slot sets precomputed once)."""
    axes = reference_axes(plan)
    slot_sets = {axis: [sorted({r // gpus_per_node for r in g}) for g in reference_groups(plan, axis)] for axis in axes}
    units = {h: [unit_of(topology, h, t) for t in TIERS] for h in hosts}
    out = []
    for order in permutations(hosts):
        vector = []
        for axis in axes:
            for t in range(len(TIERS)):
                vector.append(sum(len({units[order[s]][t] for s in slots}) > 1 for slots in slot_sets[axis]))
        out.append((order, tuple(vector)))
    return out


def exact_partition(plan: MeshPlan, axis: str, gpus_per_node: int, slots: int) -> bool:
    """The axis's groups occupy slot sets that partition the slots, all of one size, each shared by the
    same number of groups (the case where the lower bound is tight for that axis alone)."""
    counts: dict[frozenset[int], int] = {}
    for group in reference_groups(plan, axis):
        key = frozenset(r // gpus_per_node for r in group)
        counts[key] = counts.get(key, 0) + 1
    keys = list(counts)
    covered = [s for k in keys for s in k]
    return (
        len(covered) == len(set(covered)) == slots
        and len({len(k) for k in keys}) == 1
        and len(set(counts.values())) == 1
    )


def nested(topology: Topology, hosts: Sequence[str]) -> bool:
    """Every NVLink domain inside one leaf and every leaf inside one spine, where a missing value is a
    unit of its own (as the report counts it), among the allocated hosts."""
    parent: dict[tuple[str, str], str] = {}
    for host in hosts:
        for tier, up in (("nvlink_domain", "leaf"), ("leaf", "spine")):
            value = getattr(topology.by_name()[host], tier)
            if value is None:
                continue  # a unit of its own holds one node: inside whatever holds that node
            if parent.setdefault((tier, value), unit_of(topology, host, up)) != unit_of(topology, host, up):
                return False
    return True


def distinct_vectors(
    plan: MeshPlan, topology: Topology, hosts: Sequence[str], gpus_per_node: int
) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
    """(order, objective vector) for every order of ``hosts`` up to swapping hosts that sit in the same
    unit at every tier (such swaps change no count): a brute force over the distinct unit sequences."""
    axes = reference_axes(plan)
    slot_sets = {axis: [sorted({r // gpus_per_node for r in g}) for g in reference_groups(plan, axis)] for axis in axes}
    kinds: dict[tuple[str, ...], list[str]] = {}
    for host in hosts:
        kinds.setdefault(tuple(unit_of(topology, host, t) for t in TIERS[1:]), []).append(host)
    keys = list(kinds)
    left = [len(kinds[k]) for k in keys]
    out: list[tuple[tuple[str, ...], tuple[int, ...]]] = []
    sequence: list[int] = []

    def emit() -> None:
        pools = {k: list(kinds[k]) for k in keys}
        order = tuple(pools[keys[i]].pop() for i in sequence)
        vector = []
        for axis in axes:
            vector.append(sum(len(s) > 1 for s in slot_sets[axis]))
            for t in range(len(TIERS) - 1):
                vector.append(sum(len({keys[sequence[s]][t] for s in slots}) > 1 for slots in slot_sets[axis]))
        out.append((order, tuple(vector)))

    def walk() -> None:
        if len(sequence) == len(hosts):
            emit()
            return
        for i in range(len(keys)):
            if left[i]:
                left[i] -= 1
                sequence.append(i)
                walk()
                sequence.pop()
                left[i] += 1

    walk()
    return out
