"""Which node slots each group of an axis occupies, how many groups cross each tier, and the bound.

Rank ``r`` runs in node slot ``r // gpus_per_node``; an order puts node ``order[s]`` in slot ``s``. A
group's *slot class* is the set of slots its ranks occupy — fixed by the plan, whatever the order — so
an axis is summarized by its distinct classes and how many groups share each one (two tp groups in one
node share a class of one slot). Crossing counts then cost one pass over the classes per tier.

Lower bound (per axis and tier). When an axis's classes are pairwise disjoint, all of ``k`` slots and
shared by ``m`` groups each (every power-of-two mesh, and any mesh whose groups line up with nodes), a
class stays inside a unit only if that unit holds ``k`` of its allocated nodes, and disjoint classes
use distinct nodes, so unit ``u`` with ``a_u`` allocated nodes holds at most ``⌊a_u / k⌋`` whole
classes. Hence at least ``m · max(0, C − Σ_u ⌊a_u / k⌋)`` groups cross, for any order; this holds for
every tier independently, nested or not. Otherwise (classes overlap or differ in size) the bound is the
weaker ``Σ m_c`` over classes too large for the largest unit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from operator import itemgetter

from ..plan import AxisLayout, MeshPlan
from .topology import TIER_NAMES, Node

#: Objective order: axes compared lexicographically in this order, each from the fastest tier up.
PRIORITY: tuple[str, ...] = (
    "tp",
    "cp",
    "ep",
    "ep_shard",
    "dp_shard",
    "dp_replicate",
    "pp",
    "dp",
    "dp_shard_cp",
    "dp_cp",
)


@dataclass(frozen=True)
class AxisClasses:
    """The distinct slot sets of one axis's groups. ``classes`` holds those of two or more slots (a
    one-slot class never crosses anything); ``multiplicity[i]`` groups share ``classes[i]``."""

    axis: str
    groups: int
    classes: tuple[tuple[int, ...], ...]
    multiplicity: tuple[int, ...]
    span: int
    """Slots of the largest class (the node-level group span)."""
    exact: bool
    """True when the classes partition the slots with one size and one multiplicity (the bound is tight
    for a single axis and tier, and the greedy reaches it for the top axis on nested tiers)."""
    contiguous: bool
    """True when every class is a run of consecutive slots (what a Kueue slice of consecutive pods is)."""

    @cached_property
    def getters(self) -> tuple[Callable[[Sequence[int]], tuple[int, ...]], ...]:
        """One ``itemgetter`` per class: picks the class's slots out of a per-slot list at C speed."""
        return tuple(itemgetter(*cls) for cls in self.classes)


def axes_by_priority(plan: MeshPlan) -> list[str]:
    """Every axis of size > 1, in objective order; axes outside ``PRIORITY`` come last, by name."""
    present = [a for a in plan.layouts if plan.size(a) > 1]
    ranked = [a for a in PRIORITY if a in present]
    return ranked + sorted(a for a in present if a not in PRIORITY)


def _node_layout(layout: AxisLayout, gpus_per_node: int) -> AxisLayout | None:
    """The axis's layout over node slots, when every mode lies inside a node or steps whole nodes."""
    sizes, strides = [], []
    for size, stride in zip(layout.sizes, layout.strides):
        extent = size * stride
        if gpus_per_node % extent == 0:  # inside one node
            continue
        if stride % gpus_per_node == 0:  # whole nodes apart
            sizes.append(size)
            strides.append(stride // gpus_per_node)
        elif gpus_per_node % stride == 0 and extent % gpus_per_node == 0:  # fills nodes, then steps over them
            sizes.append(extent // gpus_per_node)
            strides.append(1)
        else:
            return None
    return AxisLayout.of(tuple(sizes), tuple(strides))


def axis_classes(plan: MeshPlan, axis: str, gpus_per_node: int, slots: int) -> AxisClasses:
    layout = plan.layout(axis)
    groups = plan.world_size // layout.size
    node_layout = _node_layout(layout, gpus_per_node) if plan.ranks is None else None
    if node_layout is not None:
        # Translates of one digit-aligned node layout: a partition of the slots, one size, one multiplicity.
        span = node_layout.size
        classes = tuple(tuple(c) for c in node_layout.all_groups(slots)) if span > 1 else ()
        per_class = groups * span // slots
        return AxisClasses(
            axis=axis,
            groups=groups,
            classes=classes,
            multiplicity=(per_class,) * len(classes),
            span=span,
            exact=True,
            contiguous=all(c[-1] - c[0] + 1 == len(c) for c in classes),
        )
    counts: dict[tuple[int, ...], int] = {}
    ranks = plan.ranks
    for group in layout.all_groups(plan.world_size):
        if ranks is not None:
            group = [ranks[p] for p in group]
        key = tuple(sorted({r // gpus_per_node for r in group}))
        counts[key] = counts.get(key, 0) + 1
    keys = list(counts)
    span = max(len(k) for k in keys)
    sizes = {len(k) for k in keys}
    mults = set(counts.values())
    covered = sum(len(k) for k in keys)
    disjoint = covered == len({s for k in keys for s in k})
    exact = disjoint and covered == slots and len(sizes) == 1 and len(mults) == 1
    multi = [k for k in keys if len(k) > 1]
    return AxisClasses(
        axis=axis,
        groups=groups,
        classes=tuple(sorted(multi)),
        multiplicity=tuple(counts[k] for k in sorted(multi)),
        span=span,
        exact=exact,
        contiguous=all(k[-1] - k[0] + 1 == len(k) for k in keys),
    )


def plan_classes(plan: MeshPlan, gpus_per_node: int, slots: int) -> list[AxisClasses]:
    return [axis_classes(plan, axis, gpus_per_node, slots) for axis in axes_by_priority(plan)]


def unit_key(node: Node, tier: str) -> object:
    """The unit of ``node`` at ``tier`` (not ``node``) as a hashable key, ``None`` when missing. A leaf is
    keyed by its spine and its name, so leaves that share a name under different spines are different
    units (Kueue label values, like switch names, need only be unique under their parent). An NVLink
    domain is keyed by its name alone: a domain is one physical NVLink fabric wherever its nodes sit,
    and one that spans leaves is reported (``topology_warnings``), not split."""
    if tier == "leaf":
        return (node.spine, node.leaf) if node.leaf is not None else None
    value: object = getattr(node, tier)
    return value


def unit_ids(nodes: Sequence[Node]) -> list[list[int]]:
    """Per tier (fastest first), a small integer unit id for each node of ``nodes``; a missing value is a
    unit of its own."""
    out: list[list[int]] = [list(range(len(nodes)))]
    for tier in TIER_NAMES[1:]:
        ids: dict[object, int] = {}
        column = []
        for i, node in enumerate(nodes):
            value = unit_key(node, tier)
            column.append(ids.setdefault(value if value is not None else (i,), len(ids)))
        out.append(column)
    return out


def nested(units: Sequence[Sequence[int]]) -> bool:
    """Every unit of a tier lies inside one unit of the next tier (ids from ``unit_ids``)."""
    return all(len(set(zip(fine, coarse))) == len(set(fine)) for fine, coarse in pairwise(units[1:]))


def crossings(
    classes: Sequence[AxisClasses], units: list[list[int]], order: Sequence[int], above: Sequence[int] | None = None
) -> list[list[int]]:
    """For each axis, per tier, how many groups sit in more than one unit; ``order[s]`` is the index
    (into the nodes ``units`` was built from) of the node in slot ``s``. With ``above`` (a flattened
    vector), stops early and returns only the rows computed once the result is lexicographically worse."""
    slot_units = [[tier_ids[n] for n in order] for tier_ids in units[1:]]
    out: list[list[int]] = []
    flat: list[int] = []
    above = list(above) if above is not None else None
    for axis in classes:
        if above is not None:
            prefix = above[: len(flat)]
            if flat > prefix:
                return out
            if flat < prefix:
                above = None
        node_tier = sum(axis.multiplicity)
        row = [node_tier]
        for su in slot_units:
            crossed = 0
            for get, mult in zip(axis.getters, axis.multiplicity):
                values = get(su)
                if values.count(values[0]) != len(values):
                    crossed += mult
            row.append(crossed)
        out.append(row)
        flat.extend(row)
    return out


def lower_bounds(classes: Sequence[AxisClasses], units: list[list[int]], allocated: Sequence[int]) -> list[list[int]]:
    """Per axis and tier, the fewest groups that must cross (see the module docstring for why)."""
    capacity: list[Counter[int]] = []  # per tier: unit size -> how many units of that size
    for tier_ids in units:
        capacity.append(Counter(Counter(tier_ids[n] for n in allocated).values()))
    out: list[list[int]] = []
    for axis in classes:
        row = []
        for caps in capacity:
            if axis.exact:
                if not axis.classes:
                    row.append(0)
                    continue
                k = len(axis.classes[0])
                whole = sum((a // k) * units_of_size for a, units_of_size in caps.items())
                row.append(axis.multiplicity[0] * max(0, len(axis.classes) - whole))
            else:
                largest = max(caps, default=0)
                row.append(sum(m for c, m in zip(axis.classes, axis.multiplicity) if len(c) > largest))
        out.append(row)
    return out
