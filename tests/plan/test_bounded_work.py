"""Bounded work in the planner: factoring, divisor lists, unit spans and rank views cost nothing like O(n) or O(W)."""

from __future__ import annotations

import json
import time
from itertools import product

import pytest

from meshctx import ParallelismSizes
from meshctx.plan import AxisLayout, ClusterShape, ModelShape, plan_mesh, validate_topology
from meshctx.plan.arith import divisors, factorize
from meshctx.plan.cluster import units_spanned
from meshctx.plan.mesh_plan import LISTED_GROUP_LIMIT


def test_divisors_match_trial_division() -> None:
    for n in range(1, 2500):
        assert divisors(n) == [d for d in range(1, n + 1) if n % d == 0], n


@pytest.mark.parametrize(
    "n",
    [2**31 - 1, 2**31 - 2, 2147483629 * 2147483587, 999999937 * 999999929, 16383 * 1023, 2**61 - 1, 3**40],
)
def test_factorize_is_exact_and_fast_on_primes_and_semiprimes(n: int) -> None:
    start = time.perf_counter()
    factors = factorize(n)
    assert time.perf_counter() - start < 2.0  # trial division to √n would take minutes for the semiprimes
    product_ = 1
    for prime, exponent in factors:
        assert factorize(prime) == ((prime, 1),)
        product_ *= prime**exponent
    assert product_ == n


def test_hostile_integers_plan_quickly() -> None:
    """The issue's slow requests: a 1,024-count elastic range of prime-ish worlds with tp 7, and model sizes
    near 2^31 whose divisors the hints list."""
    model = ModelShape(num_attention_heads=2**31 - 1, num_key_value_heads=2147483629, num_experts=2**31 - 2)
    start = time.perf_counter()
    report = validate_topology("fsdp2", ParallelismSizes(tp_size=7), nnodes="1:1024", nproc_per_node=16383, model=model)
    report.to_dict()
    assert time.perf_counter() - start < 5.0  # minutes before; well under a second on an idle core
    assert report.world_sizes is not None and len(report.world_sizes) == 1024


def _brute_span(plan_world: int, layout: AxisLayout, unit: int) -> int:
    return max(len({p // unit for p in group}) for group in layout.all_groups(plan_world))


@pytest.mark.parametrize(("tp", "cp", "pp"), [(4, 1, 1), (8, 2, 1), (3, 1, 2), (6, 2, 2), (5, 3, 1)])
@pytest.mark.parametrize("unit", [6, 7, 12, 72, 5])
def test_unaligned_units_match_enumeration(tp: int, cp: int, pp: int, unit: int) -> None:
    world = tp * cp * pp * 12
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=tp, cp_size=cp, pp_size=pp), world_size=world)
    for axis in plan.axis_names:
        assert units_spanned(plan, axis, unit) == _brute_span(world, plan.layout(axis), unit), (axis, unit)


def test_unaligned_units_at_the_largest_world_are_bounded() -> None:
    sizes = ParallelismSizes(tp_size=8, ep_size=64, pp_size=4)
    start = time.perf_counter()
    report = validate_topology(
        "fsdp2", sizes, world_size=2**24, cluster=ClusterShape(gpus_per_node=6, nvlink_domain=2**31 - 1)
    )
    report.to_dict()
    report = validate_topology(
        "fsdp2", sizes, world_size=2**24, cluster=ClusterShape(gpus_per_node=6, nvlink_domain=72)
    )
    report.to_dict()
    assert time.perf_counter() - start < 2.0
    assert report.plan is not None and report.plan.to_dict()["cluster"]["spans"]["tp"]["nodes"] == 2  # type: ignore[index]


def _members(group: object) -> list[int]:
    """A rank view's group as a list, expanding the CuTe form."""
    if isinstance(group, list):
        return group
    assert isinstance(group, dict) and set(group) == {"start", "sizes", "strides"}
    return [
        group["start"] + sum(c * s for c, s in zip(coord, group["strides"]))
        for coord in product(*(range(n) for n in group["sizes"]))
    ]


def test_rank_view_gives_large_groups_as_layouts() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=4, cp_size=2, pp_size=2, ep_size=8), world_size=1 << 15)
    for rank in (0, 12345, (1 << 15) - 1):
        view = plan.rank_view(rank)
        for axis, group in view["groups"].items():  # type: ignore[attr-defined]
            assert _members(group) == plan.group(axis, rank)
            assert isinstance(group, list) == (plan.size(axis) <= LISTED_GROUP_LIMIT)


def test_rank_view_at_sixteen_million_ranks_is_small_and_fast() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, pp_size=4, ep_size=8), world_size=1 << 24)
    start = time.perf_counter()
    view = plan.rank_view((1 << 24) - 1)
    elapsed = time.perf_counter() - start
    assert len(json.dumps(view)) <= 16_000
    assert elapsed < 0.05  # target 5 ms (bench/bench_rank_view.py); generous for a loaded machine
    assert view["groups"]["dp"] == {"start": (1 << 24) - 1 - 8 * ((1 << 19) - 1), "sizes": [1 << 19], "strides": [8]}  # type: ignore[index]


def test_rank_subsets_keep_listing_their_groups() -> None:
    ranks = list(range(1, 8193))
    plan = plan_mesh("ddp", ranks=ranks)
    view = plan.rank_view(5)
    assert view["groups"]["dp"] == ranks  # type: ignore[index]
