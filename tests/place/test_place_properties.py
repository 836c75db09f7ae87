"""Properties of ``place`` on generated clusters, checked against an independent reference.

Guarantees tested (and stated in docs/placement.md):
- the order is a permutation of the allocation, and the reported crossings (and both baselines') equal
  crossings recomputed from ``MeshPlan.group`` for that order;
- the objective vector is never lexicographically worse than either baseline's;
- every lower bound holds for *every* order (brute force over all permutations, ≤ 6 nodes);
- the top-priority axis reaches its lower bound at every tier, hence is optimal, whenever its groups
  partition the node slots evenly and the tiers nest;
- with power-of-two sizes and node counts on nested tiers, the whole vector equals the brute-force
  lexicographic optimum;
- on 8 and 9 nodes (every distinct order enumerated), the default search is exact: it reports
  ``optimal`` and its vector is the brute-force minimum, nested tiers or not, powers of two or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from meshctx import ParallelismSizes, plan_mesh
from meshctx.place import Node, Topology, natural_key, place
from meshctx.place.topology import TIER_NAMES
from meshctx.plan import MeshPlan, TopologyError
from tests.place.place_reference import (
    all_vectors,
    distinct_vectors,
    exact_partition,
    nested,
    reference_axes,
    reference_crossing,
)


@dataclass(frozen=True)
class Case:
    plan: MeshPlan
    topology: Topology
    allocation: tuple[str, ...]
    gpus: int
    power_of_two: bool
    is_nested: bool


def _divisors(n: int, powers_only: bool) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0 and (not powers_only or d & (d - 1) == 0)]


@st.composite
def cases(
    draw: st.DrawFn,
    max_nodes: int = 7,
    nodes: int | None = None,
    powers: bool | None = None,
    spare: int = 3,
    few_units: bool = False,
) -> Case:
    """A plan and a cluster; ``few_units`` draws from 2 leaves × 2 NVLink domain names under one spine
    (missing values rare), so that many nodes share their units and the distinct orders stay few."""
    if powers is None:
        powers = draw(st.booleans()) if nodes is None else False
    nodes_n = nodes or draw(st.sampled_from([1, 2, 4]) if powers else st.integers(1, max_nodes))
    gpus = draw(st.sampled_from([1, 2, 4]) if powers else st.sampled_from([1, 2, 3, 4]))
    world = nodes_n * gpus
    strategy = draw(st.sampled_from(["fsdp2", "fsdp2", "megatron_fsdp", "ddp"]))
    tp = cp = pp = ep = 1
    replicate = None
    if strategy != "ddp":
        tp = draw(st.sampled_from(_divisors(world, powers)))
        cp = draw(st.sampled_from(_divisors(world // tp, powers)))
        rest = world // (tp * cp)
        if strategy == "fsdp2":
            pp = draw(st.sampled_from(_divisors(rest, powers)))
            rest //= pp
            ep = draw(st.sampled_from(_divisors(rest * cp * tp, powers)))
            replicate = draw(st.sampled_from([d for d in _divisors(rest, powers) if d == 1 or d < rest]))
    try:
        plan = plan_mesh(
            strategy,
            ParallelismSizes(tp_size=tp, cp_size=cp, pp_size=pp, ep_size=ep, dp_replicate_size=replicate),
            world_size=world,
        )
    except TopologyError:
        assume(False)
        raise
    is_nested = draw(st.booleans()) or powers
    total = nodes_n + draw(st.integers(0, spare))
    names = draw(
        st.lists(
            st.from_regex(r"(gke-[a-f0-9]{3}|node[1-9][0-9]?|n[0-9]{2})", fullmatch=True),
            min_size=total,
            max_size=total,
            unique=True,
        )
    )
    members = []
    spines, leaves, domains, missing = (
        (["s0"], ["a", "b"], ["x", "y"], 29) if few_units else (["s0", "s1"], ["a", "b", "c"], ["x", "y", "z"], 9)
    )
    for name in names:
        spine = draw(st.sampled_from(spines))
        if is_nested:
            leaf = spine + draw(st.sampled_from(leaves[:2]))
            nvl = leaf + draw(st.sampled_from(domains))
        else:
            leaf = "l" + draw(st.sampled_from(leaves))
            nvl = draw(st.sampled_from(domains))
        members.append(
            Node(
                name,
                gpus,
                nvl if draw(st.integers(0, missing)) else None,
                leaf if draw(st.integers(0, missing)) else None,
                spine if draw(st.integers(0, missing)) else None,
            )
        )
    allocation = tuple(draw(st.permutations(names))[:nodes_n])
    return Case(plan, Topology.of(members), allocation, gpus, powers, is_nested)


def _vector(rows: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(c for row in rows.values() for c in row)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cases())
def test_reported_crossings_equal_the_reference_and_never_lose_to_a_baseline(case: Case) -> None:
    placement = place(case.plan, case.topology, case.allocation)
    assert sorted(placement.order) == sorted(case.allocation)
    assert placement.gpus_per_node == case.gpus
    assert list(placement.axes) == reference_axes(case.plan)
    reported = {axis: entry.crossing.as_tuple() for axis, entry in placement.axes.items()}
    assert reported == reference_crossing(case.plan, case.topology, placement.order, case.gpus)
    for name, order in (
        ("lexicographic", sorted(case.allocation)),
        ("natural", sorted(case.allocation, key=natural_key)),
    ):
        baseline = {axis: c.as_tuple() for axis, c in placement.baselines[name].items()}
        assert baseline == reference_crossing(case.plan, case.topology, order, case.gpus)
        assert placement.vector() <= _vector(baseline)
        if baseline:
            top = next(iter(baseline))
            assert reported[top] <= baseline[top]
    for entry in placement.axes.values():
        assert all(b <= c for b, c in zip(entry.lower_bound.as_tuple(), entry.crossing.as_tuple()))
    body = json.loads(json.dumps(placement.to_dict()))  # the --json / HTTP body says the same
    assert body["order"] == list(placement.order)
    assert body["launch"]["torchrun"]["node_rank"] == {host: i for i, host in enumerate(placement.order)}
    assert {axis: tuple(e["crossing"][t] for t in TIER_NAMES) for axis, e in body["axes"].items()} == reported
    for name in ("lexicographic", "natural"):
        rows = body["baselines"][name]
        assert {axis: tuple(r["crossing"][t] for t in TIER_NAMES) for axis, r in rows.items()} == {
            axis: c.as_tuple() for axis, c in placement.baselines[name].items()
        }


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cases(max_nodes=6))
def test_against_brute_force_over_every_order(case: Case) -> None:
    note(f"{case.plan.strategy} {case.plan.sizes} gpus={case.gpus} allocation={case.allocation}")
    note(f"{case.topology.nodes}")
    placement = place(case.plan, case.topology, case.allocation)
    note(f"order={placement.order} vector={placement.vector()}")
    vectors = [v for _, v in all_vectors(case.plan, case.topology, case.allocation, case.gpus)]
    bound = tuple(c for entry in placement.axes.values() for c in entry.lower_bound.as_tuple())
    for vector in vectors:  # the bound is valid for every order
        assert all(b <= c for b, c in zip(bound, vector))
    best = min(vectors, default=())
    assert best <= placement.vector()
    assert placement.search.optimal and placement.vector() == best  # exact on every brute-forceable case
    if not placement.axes:
        return
    top, entry = next(iter(placement.axes.items()))
    slots = len(case.allocation)
    is_nested = nested(case.topology, case.allocation)
    if is_nested and exact_partition(case.plan, top, case.gpus, slots):
        assert entry.crossing == entry.lower_bound
        assert entry.crossing.as_tuple() == min(v[:4] for v in vectors)
    if case.power_of_two and is_nested:
        assert placement.vector() == best
    if placement.vector() == bound:
        assert bound == best


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases(nodes=7))
def test_seven_nodes_every_bound_holds_and_no_order_beats_the_top_axis(case: Case) -> None:
    """All 5,040 orders of 7 nodes: the bounds hold for each; none beats the reported top axis when it
    is exact on nested tiers."""
    placement = place(case.plan, case.topology, case.allocation)
    vectors = [v for _, v in all_vectors(case.plan, case.topology, case.allocation, case.gpus)]
    bound = tuple(c for entry in placement.axes.values() for c in entry.lower_bound.as_tuple())
    assert all(all(b <= c for b, c in zip(bound, v)) for v in vectors)
    assert min(vectors) <= placement.vector()
    assert placement.search.optimal and placement.vector() == min(vectors)
    if placement.axes and nested(case.topology, case.allocation):
        top = next(iter(placement.axes))
        if exact_partition(case.plan, top, case.gpus, 7):
            assert placement.vector()[:4] == min(v[:4] for v in vectors)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(
        cases(nodes=8, powers=True, spare=2, few_units=True),
        cases(nodes=8, spare=2, few_units=True),
        cases(nodes=9, spare=1, few_units=True),
    )
)
def test_eight_and_nine_nodes_reach_the_brute_force_optimum(case: Case) -> None:
    """Every distinct order of 8 or 9 nodes (power-of-two sizes and not, nested tiers and not): the
    default search proves its order optimal, and it is — the brute-force lexicographic minimum."""
    note(f"{case.plan.strategy} {case.plan.sizes} gpus={case.gpus} allocation={case.allocation}")
    note(f"{case.topology.nodes}")
    placement = place(case.plan, case.topology, case.allocation)
    note(f"order={placement.order} vector={placement.vector()} search={placement.search}")
    vectors = [v for _, v in distinct_vectors(case.plan, case.topology, case.allocation, case.gpus)]
    best = min(vectors)
    bound = tuple(c for entry in placement.axes.values() for c in entry.lower_bound.as_tuple())
    assert all(all(b <= c for b, c in zip(bound, v)) for v in vectors)
    reported = {axis: entry.crossing.as_tuple() for axis, entry in placement.axes.items()}
    assert reported == reference_crossing(case.plan, case.topology, placement.order, case.gpus)
    assert placement.search.optimal
    assert placement.vector() == best
