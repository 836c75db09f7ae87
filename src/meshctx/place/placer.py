"""``place``: (plan, topology, allocation) → the node order, its crossings, bounds, baselines, launch.

A pure function: no I/O, no clock, no randomness; equal inputs give equal placements. The order is the
best, by the objective (crossings of tp, cp, ep, ... each from the fastest tier up, compared
lexicographically), of the hierarchical order and both baselines, so it is never worse than either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import permutations

from ..launch.spec import DEFAULT_MASTER_PORT
from ..plan import MeshPlan
from ..plan.problems import Code, Problem
from . import exact
from .crossings import PRIORITY, AxisClasses, crossings, lower_bounds, nested, plan_classes, unit_ids
from .hostlist import expand_hosts, natural_key
from .order import Orders, Partitions, Path, domain_path, nested_path
from .problems import PlacementError, place_error, sample
from .report import BASELINES, AxisPlacement, Crossing, Gap, Placement, Search
from .scheduler_orders import build_launch, valid_host_name
from .topology import TIER_NAMES, Node, Topology


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
    bad_names = [h for h in dict.fromkeys(allocation) if h in known and not valid_host_name(h)]
    if bad_names:
        problems.append(
            place_error(
                Code.INVALID_HOST_NAME,
                ("nodes",),
                f"{len(bad_names)} allocated host names are not RFC 1123 host names: "
                f"{sample([repr(h) for h in bad_names])}; they would reach the launch lines' shell.",
                "Use the nodes' host names (letters, digits, '-' and '.'; labels of 1-63 characters, "
                "starting and ending with a letter or digit).",
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


#: Default mode: the exact search runs when the allocation has at most this many nodes, for at most this
#: many assignments; the improvement loop builds hierarchical orders while orders × nodes stays below
#: ``ORDER_WORK`` (3 orders at 2,048 nodes, 24 at 256; the first is always built).
EXACT_NODES = 16
EXACT_BUDGET = 20_000
ORDER_WORK = 6_144
#: Exhaustive mode: every sequence of the axes (up to this many axes with classes; beyond, every single
#: move) while orders × nodes stays below ``EXHAUSTIVE_WORK`` (16 orders at 16,384 nodes, 128 at 2,048), and
#: the exact search up to this many nodes with this budget. Bounded so that the service can offer it: a few
#: seconds at most at any size (docs/placement.md, "Modes").
EXHAUSTIVE_AXES = 7
EXHAUSTIVE_WORK = 262_144
EXHAUSTIVE_NODES = 64
EXHAUSTIVE_BUDGET = 200_000
MODES = ("default", "exhaustive")
#: The axes the default improvement loop moves (the flattened dp, dp_shard_cp and dp_cp are joins of these).
MOVED_AXES = frozenset(PRIORITY[:7])
_DEBUG = False


def topology_warnings(nodes: Sequence[Node], units: list[list[int]]) -> list[str]:
    """Tiers no allocated node has, and NVLink domains that span leaves or spines."""
    warnings = [
        f"No allocated node has a {tier}: each node is a {tier} of its own, so every multi-node group counts "
        f"as crossing the {tier} tier in every order (import the topology with {tier} values to place by it)."
        for tier in TIER_NAMES[1:]
        if all(getattr(n, tier) is None for n in nodes)
    ]
    spread: dict[str, set[object]] = {}
    for node in nodes:
        if node.nvlink_domain is not None:
            spread.setdefault(node.nvlink_domain, set()).add((node.spine, node.leaf))
    split = sorted(d for d, parents in spread.items() if len(parents) > 1)
    if split:
        warnings.append(
            f"{len(split)} NVLink domains span more than one leaf or spine ({sample(split, 4)}): the tiers do not "
            "nest, so the order is the best found, proven optimal only where `optimal` says so."
        )
    return warnings


def _moved(sequence: Sequence[int], axis: int, to: int) -> tuple[int, ...]:
    rest = [a for a in sequence if a != axis]
    rest.insert(to, axis)
    return tuple(rest)


def _first_gap(classes: Sequence[AxisClasses], rows: list[list[int]], bounds: list[list[int]]) -> Gap | None:
    for axis, row, bound in zip(classes, rows, bounds):
        for tier, c, b in zip(TIER_NAMES, row, bound):
            if c > b:
                return Gap(axis.axis, tier, c, b)
    return None


def place(
    plan: MeshPlan,
    topology: Topology,
    allocation: Sequence[str] | str | None = None,
    *,
    command: Sequence[str] = ("train.py",),
    master_port: int = DEFAULT_MASTER_PORT,
    search: str = "default",
) -> Placement:
    """Order the allocated nodes for ``plan``; raises ``PlacementError`` with every problem found.

    ``allocation`` is a list of host names, a hostlist expression, or ``None`` for every node. ``search``
    is ``default`` (bounded work: ≤ 100 ms at 2,048 nodes) or ``exhaustive`` (every axis sequence and a
    longer exact search, both bounded too: seconds at most)."""
    if search not in MODES:
        raise ValueError(f"search: one of {', '.join(MODES)}, got {search!r}")
    exhaustive = search == "exhaustive"
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
    is_nested = nested(units)
    bounds = lower_bounds(classes, units, range(slots))
    bound_vector = [c for row in bounds for c in row]
    names = [natural_key(n.name) for n in nodes]
    natural = sorted(range(slots), key=names.__getitem__)
    baselines = {
        "lexicographic": sorted(range(slots), key=lambda i: nodes[i].name),
        "natural": natural,
        "topology": topology_sorted(nodes, names),
    }
    rows: dict[str, list[list[int]]] = {}
    for name, baseline in baselines.items():  # equal orders (names that follow the racks) are counted once
        same = next((other for other, seen in baselines.items() if other in rows and seen == baseline), None)
        rows[name] = rows[same] if same is not None else crossings(classes, units, baseline)

    def flat(r: list[list[int]]) -> list[int]:
        return [c for row in r for c in row]

    parts = Partitions(classes, slots)
    orders = Orders(nodes, natural)
    paths: tuple[Callable[[Node], Path], ...] = (nested_path,) if is_nested else (nested_path, domain_path)
    tried: set[tuple[object, ...]] = set()
    best: tuple[list[int], list[int], tuple[int, ...], Callable[[Node], Path]] | None = None
    work = EXHAUSTIVE_WORK if exhaustive else ORDER_WORK
    deferred: list[tuple[tuple[int, ...], Callable[[Node], Path]]] = []

    def attempt(
        sequence: tuple[int, ...], path: Callable[[Node], Path], keep: Sequence[int] = (), later: bool = True
    ) -> None:
        """Build and evaluate the order of ``sequence``'s chain unless it was tried or the work budget is
        spent. One that loses the level of an axis in ``keep`` (at its bound, with a level in the best
        chain) is put off to a second round (``later``), tried while budget remains."""
        nonlocal best
        if tried and (len(tried) + 1) * slots > work:
            return
        chain = parts.chain(sequence)
        key = (tuple(id(p) for p in chain), path)
        if key in tried:
            return
        if any(not parts.covers(chain, parts.own(b)) for b in keep):
            if later:
                deferred.append((sequence, path))
            return
        tried.add(key)
        order = orders.order(chain, path)
        vector = flat(crossings(classes, units, order, None if best is None else best[0]))
        if _DEBUG:
            print("attempt", [classes[a].axis for a in sequence], path.__name__, [p.count for p in chain], vector[:28])
        if best is None or vector < best[0][: len(vector)]:
            best = (vector, order, sequence, path)

    movable = tuple(a for a, axis in enumerate(classes) if axis.classes)
    priority = movable + tuple(a for a in range(len(classes)) if a not in movable)
    for path in paths:
        attempt(priority, path)
    if exhaustive and len(movable) <= EXHAUSTIVE_AXES:
        for sequence in permutations(movable):
            for path in paths:
                attempt((*sequence, *priority[len(movable) :]), path)
    else:
        # Improvement: for each axis (in priority order) above its bound in the best order so far, try it
        # earlier in the sequence — at every earlier position, nearest first — keeping what improves the
        # objective. A move that loses the level of a higher-priority axis at its bound is not built.
        for a in movable:
            assert best is not None
            if (len(tried) + 1) * slots > work:
                break
            if classes[a].axis not in MOVED_AXES and not exhaustive:
                continue
            if best[0][4 * a : 4 * a + 4] == bound_vector[4 * a : 4 * a + 4]:
                continue
            sequence, path = best[2], best[3]
            chain = parts.chain(sequence)
            keep = [
                b
                for b in movable
                if b < a
                and best[0][4 * b : 4 * b + 4] == bound_vector[4 * b : 4 * b + 4]
                and min(bound_vector[4 * b + 1 : 4 * b + 4]) < bound_vector[4 * b]  # something to lose
                and parts.covers(chain, parts.own(b))
            ]
            at = sequence.index(a)
            for to in range(at - 1, -1, -1):
                attempt(_moved(sequence, a, to), path, keep)
        for sequence, path in deferred:
            attempt(sequence, path, later=False)
    assert best is not None
    vector, order_ix = best[0], best[1]
    for name, candidate in baselines.items():
        if flat(rows[name]) < vector:  # never worse than a baseline
            vector, order_ix = flat(rows[name]), candidate
    explored, proof = 0, None
    if vector == bound_vector:
        proof = "lower bound"
    elif slots <= (EXHAUSTIVE_NODES if exhaustive else EXACT_NODES):
        result = exact.search(
            classes,
            units,
            range(slots),
            (tuple(vector), order_ix),
            nested=is_nested,
            budget=EXHAUSTIVE_BUDGET if exhaustive else EXACT_BUDGET,
        )
        explored = result.explored
        if list(result.vector) < vector:
            vector, order_ix = list(result.vector), list(result.order)
        if result.complete:
            proof = "exact search"
    best_rows = crossings(classes, units, order_ix)
    order = tuple(nodes[i].name for i in order_ix)
    axes = {
        axis.axis: AxisPlacement(axis.groups, Crossing.of(row), Crossing.of(bound))
        for axis, row, bound in zip(classes, best_rows, bounds)
    }
    reported = {name: {axis.axis: Crossing.of(row) for axis, row in zip(classes, rows[name])} for name in BASELINES}
    launch = build_launch(order, gpus, classes, bounds, topology, command, master_port)
    return Placement(
        order,
        gpus,
        axes,
        reported,
        launch,
        Search(search, proof is not None, proof, len(tried), explored),
        _first_gap(classes, best_rows, bounds),
        tuple(topology_warnings(nodes, units)),
    )


def topology_sorted(nodes: Sequence[Node], names: Sequence[tuple[object, ...]]) -> list[int]:
    """Node indices sorted by spine, leaf, NVLink domain (natural order, missing first), then name: the
    order of a scheduler that fills units one after the other (Kueue TAS, Slurm topology/tree)."""
    keys: dict[str, tuple[object, ...]] = {}
    missing: tuple[object, ...] = ((), "")

    def key(value: str | None) -> tuple[object, ...]:
        if value is None:
            return missing
        found = keys.get(value)
        if found is None:
            found = keys[value] = natural_key(value)
        return found

    return sorted(
        range(len(nodes)),
        key=lambda i: (key(nodes[i].spine), key(nodes[i].leaf), key(nodes[i].nvlink_domain), names[i]),
    )
