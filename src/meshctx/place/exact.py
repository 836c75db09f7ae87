"""Exact search: the lexicographic optimum of the objective by branch and bound over node orders.

Slots are filled one at a time (those of the top axis's groups first). A group that already has two
assigned slots in different units of a tier crosses that tier whatever the remaining slots get, so the
crossings decided so far are a lower bound of every completion's vector, entry by entry — hence
lexicographically; a branch whose decided vector is not below the best vector found is cut.

Symmetries that leave every count unchanged are not branched on: nodes with the same unit at every tier
(a unit holding one allocated node counts as "alone") are one *type*, and with nested tiers, two unused
units with the same parent and the same shape below are interchangeable, so only the first is tried.

The search is bounded by ``budget`` assignments; ``Result.complete`` says whether it finished, i.e.
whether the returned vector is proven to be the optimum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .crossings import AxisClasses

TIERS_UP = 3  # nvlink_domain, leaf, spine: the node tier's count is the same in every order


@dataclass(frozen=True, slots=True)
class Result:
    vector: tuple[int, ...]
    order: tuple[int, ...]
    complete: bool
    explored: int


def _slot_order(classes: Sequence[AxisClasses], slots: int) -> list[int]:
    """Slots of the top axis's classes first, class by class, then the next axis's, and so on."""
    seen: dict[int, None] = {}
    for axis in classes:
        for cls in axis.classes:
            for s in cls:
                seen.setdefault(s, None)
    for s in range(slots):
        seen.setdefault(s, None)
    return list(seen)


def _types(units: Sequence[Sequence[int]], allocated: Sequence[int]) -> tuple[list[tuple[int, ...]], list[list[int]]]:
    """Node types (unit per upper tier, -1 = alone in its unit) and the nodes of each type."""
    keys: dict[tuple[int, ...], list[int]] = {}
    sizes = [Counter(units[t][n] for n in allocated) for t in range(1, TIERS_UP + 1)]
    for n in allocated:
        key = tuple(units[t][n] if sizes[t - 1][units[t][n]] > 1 else -1 for t in range(1, TIERS_UP + 1))
        keys.setdefault(key, []).append(n)
    return list(keys), list(keys.values())


def _rules(types: list[tuple[int, ...]], counts: list[int], nested: bool) -> list[list[tuple[int, int]]]:
    """Per type, the (tier, unit) pairs such that opening the type's unit at that tier while that unit —
    the previous one with the same parent and shape — is unopened would mirror another branch."""
    rules: list[list[tuple[int, int]]] = [[] for _ in types]
    if not nested:
        return rules
    shape: list[dict[int, object]] = [{} for _ in range(TIERS_UP)]
    for key, count in zip(types, counts):
        if key[0] >= 0:
            shape[0][key[0]] = count  # nested: a domain's nodes are one type
    for t in range(1, TIERS_UP):
        kids: dict[int, list[str]] = {}
        for key, count in zip(types, counts):
            if key[t] < 0:
                continue
            if key[t - 1] < 0:
                kids.setdefault(key[t], []).extend(["alone"] * count)
            else:
                kids.setdefault(key[t], []).append(repr(shape[t - 1][key[t - 1]]))
        shape[t] = {u: tuple(sorted(entries)) for u, entries in kids.items()}
    for t in range(TIERS_UP):
        parent_of = {key[t]: key[t + 1 :] for key in types if key[t] >= 0}
        previous: dict[object, int] = {}
        before: dict[int, int] = {}
        for u in sorted(parent_of):
            signature = (parent_of[u], shape[t][u])
            if signature in previous:
                before[u] = previous[signature]
            previous[signature] = u
        for y, key in enumerate(types):
            if key[t] in before:
                rules[y].append((t, before[key[t]]))
    return rules


def search(
    classes: Sequence[AxisClasses],
    units: Sequence[Sequence[int]],
    allocated: Sequence[int],
    incumbent: tuple[tuple[int, ...], Sequence[int]],
    *,
    nested: bool,
    budget: int,
) -> Result:
    """The best order of ``allocated`` (node indices into ``units``) for ``classes``, starting from the
    ``incumbent`` (vector, order); exact when ``complete``."""
    slots = len(allocated)
    types, members = _types(units, allocated)
    counts = [len(m) for m in members]
    rules = _rules(types, counts, nested)
    opened: list[dict[int, int]] = [dict() for _ in range(TIERS_UP)]  # per tier: unit -> nodes assigned
    axis_of: list[int] = []
    mult: list[int] = []
    by_slot: list[list[int]] = [[] for _ in range(slots)]
    for a, axis in enumerate(classes):
        for cls, m in zip(axis.classes, axis.multiplicity):
            c = len(axis_of)
            axis_of.append(a)
            mult.append(m)
            for s in cls:
                by_slot[s].append(c)
    first = [-2] * (len(axis_of) * TIERS_UP)  # unit of the class's first assigned slot; -3 = crossed
    vector = [0] * (4 * len(classes))
    for a, axis in enumerate(classes):
        vector[4 * a] = sum(axis.multiplicity)
    best_vector = list(incumbent[0])
    best_types: list[int] | None = None
    slot_order = _slot_order(classes, slots)
    remaining = [0] * len(axis_of)  # unassigned slots of each class
    for s in range(slots):
        for c in by_slot[s]:
            remaining[c] += 1
    left: list[dict[int, int]] = [{} for _ in range(TIERS_UP)]  # per tier: unit -> unassigned nodes in it
    for key, count in zip(types, counts):
        for t in range(TIERS_UP):
            if key[t] >= 0:
                left[t][key[t]] = left[t].get(key[t], 0) + count
    span = range(len(axis_of))

    def bound() -> list[int]:
        """The decided crossings plus the groups whose unit cannot hold their unassigned slots."""
        out = list(vector)
        for c in span:
            r = remaining[c]
            if not r:
                continue
            base = c * TIERS_UP
            for t in range(TIERS_UP):
                u = first[base + t]
                if u >= 0 and left[t][u] < r:
                    out[4 * axis_of[c] + 1 + t] += mult[c]
        return out

    assigned = [0] * slots
    explored = 0
    stopped = False

    def assign(s: int, y: int, undo: list[tuple[int, int]]) -> None:
        key = types[y]
        for c in by_slot[s]:
            base = c * TIERS_UP
            for t in range(TIERS_UP):
                state = first[base + t]
                if state == -3:
                    continue
                u = key[t]
                if state == -2 and u >= 0:
                    undo.append((base + t, state))
                    first[base + t] = u
                elif u < 0 or state != u:
                    undo.append((base + t, state))
                    first[base + t] = -3
                    vector[4 * axis_of[c] + 1 + t] += mult[c]

    def unassign(undo: list[tuple[int, int]]) -> None:
        for index, state in reversed(undo):
            if first[index] == -3:
                c, t = divmod(index, TIERS_UP)
                vector[4 * axis_of[c] + 1 + t] -= mult[c]
            first[index] = state

    def dfs(depth: int) -> None:
        nonlocal best_vector, best_types, explored, stopped
        if depth == slots:
            best_vector = list(vector)
            best_types = list(assigned)
            return
        s = slot_order[depth]
        for y, key in enumerate(types):
            if counts[y] == 0:
                continue
            if any(opened[t].get(key[t], 0) == 0 and opened[t].get(v, 0) == 0 for t, v in rules[y]):
                continue  # would open a unit before an interchangeable earlier one: a mirror of another branch
            explored += 1
            if explored > budget:
                stopped = True
                return
            undo: list[tuple[int, int]] = []
            assign(s, y, undo)
            for c in by_slot[s]:
                remaining[c] -= 1
            for t in range(TIERS_UP):
                if key[t] >= 0:
                    left[t][key[t]] -= 1
            if vector < best_vector and bound() < best_vector:
                counts[y] -= 1
                assigned[s] = y
                for t in range(TIERS_UP):
                    if key[t] >= 0:
                        opened[t][key[t]] = opened[t].get(key[t], 0) + 1
                dfs(depth + 1)
                for t in range(TIERS_UP):
                    if key[t] >= 0:
                        opened[t][key[t]] -= 1
                counts[y] += 1
            for c in by_slot[s]:
                remaining[c] += 1
            for t in range(TIERS_UP):
                if key[t] >= 0:
                    left[t][key[t]] += 1
            unassign(undo)
            if stopped:
                return

    dfs(0)
    if best_types is None:
        return Result(tuple(incumbent[0]), tuple(incumbent[1]), not stopped, explored)
    pools = [list(m) for m in members]
    order = [pools[y].pop(0) for y in best_types]
    return Result(tuple(best_vector), tuple(order), not stopped, explored)
