"""The hierarchical order: pack the plan's group blocks into the topology's units, finest first.

1. *Slot levels.* Going down the axis priority list, the join of each axis's slot classes with those
   before it (union-find), then the axis's own classes, are offered as partitions of the slots; one is
   kept when its blocks have one size and it nests with those kept so far. The kept partitions form a
   chain, finest first: level ℓ's blocks (``k_ℓ`` slots each) are unions of ``c_ℓ = k_ℓ / k_{ℓ-1}``
   blocks of level ℓ-1, and the last level is the whole allocation.
2. *Node chunks.* Nodes sit in a unit tree (spine → leaf → NVLink domain → node, natural order inside).
   For each level, items (nodes, then chunks of the previous level) are cut into chunks of ``c_ℓ``
   items bottom-up: inside each unit first, and the leftovers of a unit's children are pooled in the
   unit and cut there, and so on up to the root ("largest unit that still fits a whole span").
3. The chunk tree is laid onto the block tree (children in slot order), so chunk ℓ fills block ℓ.

With nested units and uniform levels, cutting unit ``u``'s items this way leaves ``⌊a_u / k_ℓ⌋`` whole
chunks inside ``u`` at every tier at once — the lower bound of ``crossings`` — so every axis whose
classes *are* level blocks (the top axis always is) reaches its bound at every tier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .crossings import AxisClasses
from .hostlist import natural_key
from .topology import Node

# An item is a node index (level 0) or a list of items (a chunk).
Item = object


class _Components:
    """Union-find over slots."""

    def __init__(self, slots: int) -> None:
        self.parent = list(range(slots))
        self.count = slots

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(self, classes: Sequence[tuple[int, ...]]) -> None:
        for cls in classes:
            root = self.find(cls[0])
            for s in cls[1:]:
                other = self.find(s)
                if other != root:
                    self.parent[other] = root
                    self.count -= 1

    def ids(self) -> list[int]:
        return [self.find(s) for s in range(len(self.parent))]


def _uniform(ids: list[int]) -> bool:
    return len(set(Counter(ids).values())) == 1


def _refines(fine: list[int], coarse: list[int]) -> bool:
    """Every block of ``fine`` lies inside one block of ``coarse``."""
    return len(set(zip(fine, coarse))) == len(set(fine))


def slot_levels(classes: Sequence[AxisClasses], slots: int) -> list[list[int]]:
    """The block id of every slot at each level, finest first (see the module docstring).

    Candidates, in priority order: for each axis, the join of its classes with those of every axis
    before it, then its own classes alone. A candidate becomes a level when its blocks have one size and
    it nests with the levels taken so far, so a lower-priority axis with finer groups (ep under a tp that
    spans many nodes) still gets packed, but never at the expense of a level taken before it."""
    chain: list[tuple[int, list[int]]] = []  # (number of blocks, block id per slot), most blocks first

    def offer(count: int, ids: list[int] | None) -> None:
        if count == slots or count in (c for c, _ in chain):
            return
        ids = ids if ids is not None else [0] * slots
        if not _uniform(ids):
            return
        at = sum(1 for c, _ in chain if c > count)
        if at > 0 and not _refines(chain[at - 1][1], ids):
            return
        if at < len(chain) and not _refines(ids, chain[at][1]):
            return
        chain.insert(at, (count, ids))

    cumulative = _Components(slots)
    for axis in classes:
        if not axis.classes:
            continue
        if cumulative.count > 1:
            cumulative.join(axis.classes)
            offer(cumulative.count, cumulative.ids() if cumulative.count > 1 else None)
        if axis.exact:  # disjoint classes: the partition is the classes themselves
            ids = list(range(slots))
            for cls in axis.classes:
                for s in cls:
                    ids[s] = cls[0]
            offer(slots - sum(len(c) - 1 for c in axis.classes), ids)
        else:
            own = _Components(slots)
            own.join(axis.classes)
            offer(own.count, own.ids() if own.count > 1 else None)
    offer(1, None)
    return [ids for _, ids in chain]


def _block_tree(levels: list[list[int]], slots: int) -> list[object]:
    """The root block as nested lists of slots (children sorted by their first slot)."""
    current: list[object] = list(range(slots))  # level 0: each slot is its own block
    firsts = list(range(slots))
    for ids in levels:
        grouped: dict[int, list[int]] = {}
        for index, first in enumerate(firsts):
            grouped.setdefault(ids[first], []).append(index)
        blocks = sorted(grouped.values(), key=lambda members: firsts[members[0]])
        current = [[current[i] for i in sorted(members, key=lambda m: firsts[m])] for members in blocks]
        firsts = [min(firsts[i] for i in members) for members in blocks]
    assert len(current) == 1
    return current  # the single root block, wrapped


def _unit_path(node: Node) -> tuple[object, ...]:
    """Where a node sits in the unit tree; a missing tier is transparent here (the report counts it)."""
    return (node.spine, node.leaf, node.nvlink_domain if node.nvlink_domain is not None else ("node", node.name))


def _sort_key(value: object) -> tuple[object, ...]:
    if value is None:
        return (0, "")
    if isinstance(value, tuple):
        return (2, natural_key(str(value[1])))
    return (1, natural_key(str(value)))


def _unit_tree(paths: Sequence[tuple[object, ...]]) -> dict[tuple[object, ...], list[tuple[object, ...]]]:
    """Each unit's child units, in natural order of their names."""
    children: dict[tuple[object, ...], set[tuple[object, ...]]] = {}
    for path in paths:
        for d in range(len(path), 0, -1):
            siblings = children.setdefault(path[: d - 1], set())
            if path[:d] in siblings:
                break
            siblings.add(path[:d])
    return {parent: sorted(kids, key=lambda p: _sort_key(p[-1])) for parent, kids in children.items()}


def _cut(
    items_at: dict[tuple[object, ...], list[Item]],
    size: int,
    children: dict[tuple[object, ...], list[tuple[object, ...]]],
) -> dict[tuple[object, ...], list[Item]]:
    """Cut items into chunks of ``size`` bottom-up through the unit tree; returns the chunks keyed by the
    deepest unit that holds each one."""
    depth = 3
    live = {path[:d] for path in items_at for d in range(len(path) + 1)}
    chunks: dict[tuple[object, ...], list[Item]] = {}
    visited = 0

    def visit(path: tuple[object, ...]) -> list[tuple[int, Item]]:
        # Pool entries carry their unit's pre-order rank; a chunk lists its members in that order, so
        # sibling chunks built from the same units line up position by position (which keeps strided
        # groups, such as pp's, inside a unit more often; positions within a chunk are otherwise free).
        nonlocal visited
        visited += 1
        pool = [(visited, item) for item in items_at.get(path, ())]
        if len(path) < depth:
            for child in children.get(path, ()):
                if child in live:
                    pool.extend(visit(child))
        whole = len(pool) - len(pool) % size
        if whole:
            chunks.setdefault(path, []).extend(
                [item for _, item in sorted(pool[i : i + size], key=lambda entry: entry[0])]
                for i in range(0, whole, size)
            )
        return pool[whole:]

    rest = visit(())
    assert not rest, "allocation size must be a multiple of every level's block size"
    return chunks


def hierarchical_order(
    nodes: Sequence[Node], classes: Sequence[AxisClasses], natural: Sequence[int] | None = None
) -> list[int]:
    """A node index for every slot: ``order[s]`` is the index into ``nodes`` of the node in slot ``s``.
    ``natural`` is the node indices in natural name order, when the caller has it already."""
    slots = len(nodes)
    levels = slot_levels(classes, slots)
    items_at: dict[tuple[object, ...], list[Item]] = {}
    if natural is None:
        natural = sorted(range(slots), key=lambda i: natural_key(nodes[i].name))
    for index in natural:
        items_at.setdefault(_unit_path(nodes[index]), []).append(index)
    children = _unit_tree(list(items_at))
    previous = 1
    for ids in levels:
        size = slots // len(set(ids))
        items_at = _cut(items_at, size // previous, children)
        previous = size
    (root_chunk,) = [chunk for chunks in items_at.values() for chunk in chunks]
    (root_block,) = _block_tree(levels, slots)
    order = [0] * slots

    def lay(block: object, chunk: object) -> None:
        if isinstance(block, int):
            assert isinstance(chunk, int)
            order[block] = chunk
            return
        assert isinstance(block, list) and isinstance(chunk, list) and len(block) == len(chunk)
        for b, c in zip(block, chunk):
            lay(b, c)

    lay(root_block, root_chunk)
    return order
