"""Hierarchical orders: pack the plan's group blocks into the topology's units, finest first.

1. *Slot levels.* An axis sequence (the objective's priority order, or that order with one axis moved
   earlier) is walked; the join of each axis's slot classes with those of the axes before it in the
   sequence (union-find), then the axis's own classes, are offered as partitions of the slots. One is
   kept when its blocks have one size and it nests with those kept so far. The kept partitions form a
   chain, finest first: level ℓ's blocks (``k_ℓ`` slots each) are unions of ``c_ℓ = k_ℓ / k_{ℓ-1}``
   blocks of level ℓ-1, and the last level is the whole allocation. Moving an axis earlier lets its
   groups (pipeline stages' strided pairs, HSDP replicas) become the finest blocks, so they are packed
   into units first — interleaved across the coarser groups instead of laid out contiguously.
2. *Node chunks.* Nodes sit in a unit tree (spine → leaf → NVLink domain → node, natural order inside;
   or NVLink domain first, for domains that span leaves). For each level, items (nodes, then chunks of
   the previous level) are cut into chunks of ``c_ℓ`` items bottom-up: inside each unit first, and the
   leftovers of a unit's children are pooled in the unit and cut there, and so on up to the root.
3. The chunk tree is laid onto the block tree (children in slot order), so chunk ℓ fills block ℓ.

With nested units and uniform levels, cutting unit ``u``'s items this way leaves ``⌊a_u / k_ℓ⌋`` whole
chunks inside ``u`` at every tier at once — the lower bound of ``crossings`` — so every axis whose
classes *are* level blocks (the top axis always is, in the priority sequence) reaches its bound at every
tier. Which sequence is best is decided by evaluating the objective (``placer``), not assumed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeGuard

from .crossings import AxisClasses
from .hostlist import natural_key
from .topology import Node

# An item is a node index (level 0) or a list of items (a chunk).
Item: TypeAlias = int | list["Item"]
Path = tuple[object, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Partition:
    """A partition of the slots: ``ids[s]`` is the representative slot of slot ``s``'s block."""

    count: int
    ids: tuple[int, ...]
    uniform: bool


class Partitions:
    """The partitions a sequence offers, cached by the *set* of axes joined (a join does not depend on
    the order of the axes), so that many sequences cost little more than one."""

    def __init__(self, classes: Sequence[AxisClasses], slots: int) -> None:
        self.classes = classes
        self.slots = slots
        identity = tuple(range(slots))
        self._joins: dict[frozenset[int], Partition] = {frozenset(): Partition(slots, identity, True)}
        self._own: dict[int, Partition] = {}
        self._refines: dict[tuple[int, int], bool] = {}

    def _merge(self, start: Partition, axis: int) -> Partition:
        """``start`` with the blocks that a class of ``axis`` touches merged (union-find over blocks)."""
        ids = start.ids
        axis_classes = self.classes[axis]
        if start.count == self.slots and axis_classes.exact:  # disjoint classes: the blocks are the classes
            fresh = list(ids)
            for cls in axis_classes.classes:
                low = min(cls)
                for s in cls:
                    fresh[s] = low
            merged = tuple(fresh)
            count = self.slots - sum(len(cls) - 1 for cls in axis_classes.classes)
            return Partition(count, merged, len(set(Counter(merged).values())) == 1)
        parent: dict[int, int] = {}

        def find(x: int) -> int:
            root = x
            while (up := parent.get(root, root)) != root:
                root = up
            while x != root:
                parent[x], x = root, parent[x]
            return root

        count = start.count
        touched = {frozenset(get(ids)) for get in self.classes[axis].getters}
        for blocks in touched:
            if len(blocks) > 1:
                roots = {find(b) for b in blocks}
                if len(roots) > 1:
                    low = min(roots)
                    for other in roots:
                        if other != low:
                            parent[other] = low
                    count -= len(roots) - 1
        if count == start.count:
            return start
        remap = {b: find(b) for b in list(parent)}
        new = tuple(map(remap.get, ids, ids))
        return Partition(count, new, len(set(Counter(new).values())) == 1)

    def join(self, axes: frozenset[int], last: int) -> Partition:
        """The join of the classes of ``axes``; ``last`` is a member, the rest is cached or computed."""
        found = self._joins.get(axes)
        if found is None:
            others = axes - {last}
            rest = self.join(others, min(others)) if others else self._joins[frozenset()]
            found = self._merge(rest, last) if rest.count > 1 else rest
            self._joins[axes] = found
        return found

    def own(self, axis: int) -> Partition:
        found = self._own.get(axis)
        if found is None:
            found = self._own[axis] = self._merge(self._joins[frozenset()], axis)
        return found

    def refines(self, fine: Partition, coarse: Partition) -> bool:
        """Every block of ``fine`` lies inside one block of ``coarse``."""
        if fine is coarse:
            return True
        if fine.count % coarse.count:  # uniform blocks: a coarse block is a whole number of fine ones
            return False
        key = (id(fine), id(coarse))
        found = self._refines.get(key)
        if found is None:
            found = self._refines[key] = len(set(zip(fine.ids, coarse.ids))) == fine.count
        return found

    def covers(self, chain: Sequence[Partition], part: Partition) -> bool:
        """``part`` is one of ``chain``'s levels (the same blocks)."""
        return any(p.count == part.count and self.refines(p, part) for p in chain)

    def chain(self, sequence: Sequence[int]) -> tuple[Partition, ...]:
        """The nested partitions ``sequence`` keeps, finest first, without the whole allocation."""
        chain: list[Partition] = []  # most blocks first

        def offer(p: Partition) -> None:
            if p.count in (self.slots, 1) or not p.uniform or any(c.count == p.count for c in chain):
                return
            at = sum(1 for c in chain if c.count > p.count)
            if at > 0 and not self.refines(chain[at - 1], p):
                return
            if at < len(chain) and not self.refines(p, chain[at]):
                return
            chain.insert(at, p)

        done: frozenset[int] = frozenset()
        for axis in sequence:
            if not self.classes[axis].classes:
                continue
            done = done | {axis}
            offer(self.join(done, axis))
            offer(self.own(axis))
        return tuple(chain)


def slot_levels(classes: Sequence[AxisClasses], slots: int) -> list[list[int]]:
    """The block id of every slot at each level of the priority sequence, finest first, the whole last."""
    chain = Partitions(classes, slots).chain(range(len(classes)))
    return [list(p.ids) for p in chain] + [[0] * slots]


def _block_tree(levels: Sequence[Sequence[int]], slots: int) -> list[object]:
    """The root block as nested lists of slots (children sorted by their first slot)."""
    current: list[object] = list(range(slots))  # level 0: each slot is its own block
    firsts = list(range(slots))
    for ids in levels:
        grouped: dict[int, list[int]] = {}
        for index, first in enumerate(firsts):
            grouped.setdefault(ids[first], []).append(index)  # firsts ascend, so members do too
        blocks = sorted(grouped.values(), key=lambda members: firsts[members[0]])
        current = [[current[i] for i in members] for members in blocks]
        firsts = [firsts[members[0]] for members in blocks]
    assert len(current) == 1
    return current  # the single root block, wrapped


def nested_path(node: Node) -> Path:
    """spine → leaf → NVLink domain; leaves are keyed by their spine. Nodes of a leaf without a domain
    share one bucket (each is a domain of its own: they are pooled in the leaf either way)."""
    return (node.spine, node.leaf, node.nvlink_domain)


def domain_path(node: Node) -> Path:
    """NVLink domain → spine → leaf: keeps a domain's nodes together even where it spans leaves."""
    return (node.nvlink_domain, node.spine, node.leaf)


def _node_units(node: Node) -> Units:
    return (node.nvlink_domain, (node.spine, node.leaf) if node.leaf is not None else None, node.spine)


def _sort_key(value: object) -> tuple[object, ...]:
    if value is None:
        return (0, "")
    if isinstance(value, tuple):
        return (2, natural_key(str(value[1])))
    return (1, natural_key(str(value)))


def _unit_tree(paths: Sequence[Path]) -> dict[Path, list[Path]]:
    """Each unit's child units, in natural order of their names."""
    children: dict[Path, set[Path]] = {}
    for path in paths:
        for d in range(len(path), 0, -1):
            siblings = children.setdefault(path[: d - 1], set())
            if path[:d] in siblings:
                break
            siblings.add(path[:d])
    return {parent: sorted(kids, key=lambda p: _sort_key(p[-1])) for parent, kids in children.items()}


def _cut(items_at: dict[Path, list[Item]], size: int, children: dict[Path, list[Path]]) -> dict[Path, list[Item]]:
    """Cut items into chunks of ``size`` bottom-up through the unit tree; returns the chunks keyed by the
    deepest unit that holds each one."""
    chunks: dict[Path, list[Item]] = {}
    visited = 0

    def visit(path: Path) -> list[tuple[int, Item]]:
        # Pool entries carry their unit's pre-order rank; a chunk lists its members in that order, so
        # sibling chunks built from the same units line up position by position (which keeps strided
        # groups inside a unit more often; positions within a chunk are otherwise free).
        nonlocal visited
        visited += 1
        pool = [(visited, item) for item in items_at.get(path, ())]
        for child in children.get(path, ()):
            pool.extend(visit(child))
        whole = len(pool) - len(pool) % size
        if whole:
            if size == 1:
                chunks.setdefault(path, []).extend([item] for _, item in pool)
            else:
                chunks.setdefault(path, []).extend(
                    [item for _, item in sorted(pool[i : i + size], key=_first)] for i in range(0, whole, size)
                )
        return pool[whole:]

    rest = visit(())
    assert not rest, "allocation size must be a multiple of every level's block size"
    return chunks


def _first(entry: tuple[int, Item]) -> int:
    return entry[0]


Units = tuple[object, object, object]  # (NVLink domain, leaf, spine) keys of an item, None when mixed or missing


def _common(items: list[Units]) -> Units:
    first = items[0]
    if items.count(first) == len(items):
        return first
    rest = items[1:]

    def kept(t: int) -> object:
        return first[t] if all(it[t] == first[t] for it in rest) else None

    return (kept(0), kept(1), kept(2))


def _of_chunks(chunk: list[Item]) -> TypeGuard[list[list[Item]]]:
    """Whether ``chunk`` holds chunks rather than node indices (its members are all of one level)."""
    return bool(chunk) and isinstance(chunk[0], list)


def _align(root: list[Item], units: Callable[[Item], Units]) -> None:
    """Reorder the members of each chunk's children (in place) so that position ``p`` holds items of one
    unit in as many children as possible — NVLink domains first, then leaves, then spines. Sibling blocks
    of the plan's levels correspond position by position (slot ``i`` of one pipeline stage and slot ``i``
    of the next form a pp group), so this keeps strided groups inside units."""
    stack: list[list[Item]] = [root]
    while stack:
        children = stack.pop()
        if not _of_chunks(children):
            continue
        stack.extend(children)
        if len(children) < 2 or len(children[0]) < 2:
            continue
        keys = [[units(item) for item in child] for child in children]
        if len({k for row in keys for k in row}) == 1:
            continue  # one unit everywhere: nothing to align
        remaining = [list(range(len(child))) for child in children]
        heads: list[list[int]] = [[] for _ in children]
        for tier in range(3):
            groups: list[dict[object, list[int]]] = []
            for row, rest in zip(keys, remaining):
                by: dict[object, list[int]] = {}
                for j in rest:
                    key = row[j][tier]
                    if key is not None:
                        by.setdefault(key, []).append(j)
                groups.append(by)
            moved = False
            for key in groups[0]:
                common = min(len(by.get(key, ())) for by in groups)
                if common:
                    moved = True
                    for head, by in zip(heads, groups):
                        head.extend(by[key][:common])
            if moved:
                taken = [set(head) for head in heads]
                remaining = [[j for j in rest if j not in took] for rest, took in zip(remaining, taken)]
        for child, head, rest in zip(children, heads, remaining):
            if head:
                child[:] = [child[j] for j in head + rest]


def _fanouts(chain: Sequence[Partition], slots: int) -> tuple[int, ...]:
    """Items per chunk at each level (the whole allocation last)."""
    sizes = [slots // p.count for p in chain] + [slots]
    return tuple(size // previous for size, previous in zip(sizes, [1, *sizes]))


def chunk_tree(
    nodes: Sequence[Node],
    fanouts: Sequence[int],
    natural: Sequence[int],
    path: Callable[[Node], Path] = nested_path,
    align: bool = True,
    start: tuple[dict[Path, list[Item]], dict[Path, list[Path]]] | None = None,
) -> Item:
    """The root chunk: nodes cut level by level (``fanouts[ℓ]`` items per chunk) through the unit tree.
    It depends on the levels' sizes only, not on which slots form their blocks, so candidates with the
    same sizes share it. ``start`` is the nodes by unit and the unit tree, when the caller has them."""
    items_at, children = start if start is not None else _start(nodes, natural, path)
    for fanout in fanouts:
        items_at = _cut(items_at, fanout, children)
    (root_chunk,) = [chunk for chunks in items_at.values() for chunk in chunks]
    if align:
        node_units = [_node_units(n) for n in nodes]
        memo: dict[int, Units] = {}

        def units(item: Item) -> Units:
            if isinstance(item, int):
                return node_units[item]
            found = memo.get(id(item))
            if found is None:
                found = memo[id(item)] = _common([units(member) for member in item])
            return found

        _align([root_chunk], units)
    return root_chunk


def _start(
    nodes: Sequence[Node], natural: Sequence[int], path: Callable[[Node], Path]
) -> tuple[dict[Path, list[Item]], dict[Path, list[Path]]]:
    items_at: dict[Path, list[Item]] = {}
    for index in natural:
        items_at.setdefault(path(nodes[index]), []).append(index)
    return items_at, _unit_tree(list(items_at))


def lay_out(chain: Sequence[Partition], root_chunk: Item, slots: int) -> list[int]:
    """Lay the chunk tree onto the block tree of ``chain``: ``order[s]`` is the node in slot ``s``."""
    levels: list[Sequence[int]] = [p.ids for p in chain]
    levels.append((0,) * slots)
    (root_block,) = _block_tree(levels, slots)
    order = [0] * slots
    stack: list[tuple[object, object]] = [(root_block, root_chunk)]
    while stack:
        block, chunk = stack.pop()
        if isinstance(block, int):
            assert isinstance(chunk, int)
            order[block] = chunk
            continue
        assert isinstance(block, list) and isinstance(chunk, list) and len(block) == len(chunk)
        stack.extend(zip(block, chunk))
    return order


class Orders:
    """Hierarchical orders of one allocation, sharing chunk trees between chains of the same sizes."""

    def __init__(self, nodes: Sequence[Node], natural: Sequence[int]) -> None:
        self.nodes = nodes
        self.natural = natural
        self._trees: dict[tuple[object, ...], Item] = {}
        self._starts: dict[object, tuple[dict[Path, list[Item]], dict[Path, list[Path]]]] = {}

    def order(self, chain: Sequence[Partition], path: Callable[[Node], Path] = nested_path) -> list[int]:
        slots = len(self.nodes)
        fanouts = _fanouts(chain, slots)
        key = (path, fanouts)
        tree = self._trees.get(key)
        if tree is None:
            start = self._starts.get(path)
            if start is None:
                start = self._starts[path] = _start(self.nodes, self.natural, path)
            tree = self._trees[key] = chunk_tree(self.nodes, fanouts, self.natural, path, start=start)
        return lay_out(chain, tree, slots)


def hierarchical_order(
    nodes: Sequence[Node],
    classes: Sequence[AxisClasses],
    natural: Sequence[int] | None = None,
    *,
    chain: Sequence[Partition] | None = None,
    path: Callable[[Node], Path] = nested_path,
) -> list[int]:
    """A node index for every slot: ``order[s]`` is the index into ``nodes`` of the node in slot ``s``.
    ``natural`` is the node indices in natural name order, when the caller has it already; ``chain`` the
    slot levels (default: those of the priority sequence); ``path`` places a node in the unit tree."""
    if natural is None:
        natural = sorted(range(len(nodes)), key=lambda i: natural_key(nodes[i].name))
    if chain is None:
        chain = Partitions(classes, len(nodes)).chain(range(len(classes)))
    return Orders(nodes, natural).order(chain, path)
