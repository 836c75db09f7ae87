"""The hierarchical order: pack the plan's group blocks into the topology's units, finest first.

1. *Slot blocks.* Going down the axis priority list, join the slot classes of each axis (union-find);
   every time the number of components drops and all components have one size, that partition is a
   level. Level ℓ's blocks (``k_ℓ`` slots each) are unions of ``c_ℓ = k_ℓ / k_{ℓ-1}`` blocks of level
   ℓ-1; the last level is the whole allocation.
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

from collections.abc import Sequence

from .crossings import AxisClasses
from .hostlist import natural_key
from .topology import Node

# An item is a node index (level 0) or a list of items (a chunk).
Item = object


def slot_levels(classes: Sequence[AxisClasses], slots: int) -> list[list[int]]:
    """The block id of every slot at each level (see the module docstring), finest first."""
    parent = list(range(slots))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    components = slots
    levels: list[list[int]] = []
    for axis in classes:
        if components == 1:
            break
        for cls in axis.classes:
            root = find(cls[0])
            for s in cls[1:]:
                other = find(s)
                if other != root:
                    parent[other] = root
                    components -= 1
        if components == slots or (levels and components == len(set(levels[-1]))):
            continue
        ids = [find(s) for s in range(slots)]
        sizes: dict[int, int] = {}
        for i in ids:
            sizes[i] = sizes.get(i, 0) + 1
        if len(set(sizes.values())) == 1:
            levels.append(ids)
    if not levels or len(set(levels[-1])) > 1:
        levels.append([0] * slots)
    return levels


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


def _cut(items_at: dict[tuple[object, ...], list[Item]], size: int) -> dict[tuple[object, ...], list[Item]]:
    """Cut items into chunks of ``size`` bottom-up through the unit tree; returns the chunks keyed by the
    deepest unit that holds each one."""
    depth = 3
    children: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
    for path in items_at:
        for d in range(len(path), 0, -1):
            prefix, parent = path[:d], path[: d - 1]
            siblings = children.setdefault(parent, [])
            if prefix in siblings:
                break
            siblings.append(prefix)
    for siblings in children.values():
        siblings.sort(key=lambda p: _sort_key(p[-1]))
    chunks: dict[tuple[object, ...], list[Item]] = {}

    def visit(path: tuple[object, ...]) -> list[Item]:
        pool: list[Item] = list(items_at.get(path, ()))
        if len(path) < depth:
            for child in children.get(path, ()):
                pool.extend(visit(child))
        whole = len(pool) - len(pool) % size
        if whole:
            chunks.setdefault(path, []).extend(pool[i : i + size] for i in range(0, whole, size))
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
    previous = 1
    for ids in levels:
        size = slots // len(set(ids))
        items_at = _cut(items_at, size // previous)
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
