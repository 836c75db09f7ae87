"""Property tests: for every valid configuration up to W = 256, the plan's groups match brute force."""

from __future__ import annotations

from math import prod

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctx import ParallelismSizes
from meshctx.plan import ClusterShape, plan_mesh
from meshctx.plan.cluster import units_spanned
from tests.plan.brute_force import reference_all_groups

MAX_WORLD = 256


@st.composite
def fsdp2_topologies(draw: st.DrawFn) -> tuple[ParallelismSizes, int]:
    degrees = []
    remaining = MAX_WORLD
    for _ in range(5):  # pp, dp_replicate, dp_shard, cp, tp
        d = draw(st.integers(1, min(8, remaining)))
        degrees.append(d)
        remaining //= d
    pp, replicate, shard, cp, tp = degrees
    if replicate > 1 and shard == 1:
        shard = 2  # dp_replicate == dp is pure replication, not FSDP2
    world = pp * replicate * shard * cp * tp
    span = replicate * shard * cp * tp
    ep = draw(st.sampled_from([d for d in range(1, span + 1) if span % d == 0]))
    dp_given = draw(st.booleans())
    sizes = ParallelismSizes(
        tp_size=tp,
        pp_size=pp,
        cp_size=cp,
        ep_size=ep,
        dp_size=replicate * shard if dp_given else None,
        dp_replicate_size=replicate if replicate > 1 or draw(st.booleans()) else None,
    )
    return sizes, world


@st.composite
def rank_orders(draw: st.DrawFn, world: int) -> list[int] | None:
    kind = draw(st.sampled_from(["identity", "permutation", "subset"]))
    if kind == "identity":
        return None
    if kind == "permutation":
        return draw(st.permutations(list(range(world))))
    offset = draw(st.integers(0, 64))
    return [offset + r for r in draw(st.permutations(list(range(world))))]


def _check_plan_against_reference(strategy: str, sizes: ParallelismSizes, world: int, ranks: list[int] | None) -> None:
    plan = plan_mesh(strategy, sizes, world_size=world if ranks is None else None, ranks=ranks)
    members = list(ranks) if ranks is not None else list(range(world))
    expected = reference_all_groups(strategy, plan.sizes.to_dict(), members)
    assert set(plan.axis_names) == set(expected)
    for axis, groups in expected.items():
        actual = sorted(plan.groups(axis))
        assert actual == groups, axis
        # groups partition the ranks and have the axis size
        flat = sorted(r for g in actual for r in g)
        assert flat == sorted(members), axis
        assert all(len(g) == plan.size(axis) for g in actual), axis
        # one rank's group and coordinate agree with the full enumeration
        for group in actual[:3]:
            for index, rank in enumerate(group):
                assert plan.group(axis, rank) == group
                assert plan.coordinates(rank)[axis] == index


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fsdp2_groups_match_brute_force(data: st.DataObject) -> None:
    sizes, world = data.draw(fsdp2_topologies())
    ranks = data.draw(rank_orders(world))
    _check_plan_against_reference("fsdp2", sizes, world, ranks)


@settings(max_examples=150, deadline=None)
@given(dp=st.integers(1, 16), cp=st.integers(1, 4), tp=st.integers(1, 8), data=st.data())
def test_megatron_groups_match_brute_force(dp: int, cp: int, tp: int, data: st.DataObject) -> None:
    world = dp * cp * tp
    ranks = data.draw(rank_orders(world))
    sizes = ParallelismSizes(tp_size=tp, cp_size=cp, dp_size=data.draw(st.sampled_from([dp, None])))
    _check_plan_against_reference("megatron_fsdp", sizes, world, ranks)


@settings(max_examples=50, deadline=None)
@given(world=st.integers(1, MAX_WORLD), data=st.data())
def test_ddp_is_one_data_parallel_group(world: int, data: st.DataObject) -> None:
    ranks = data.draw(rank_orders(world))
    _check_plan_against_reference("ddp", ParallelismSizes(), world, ranks)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_flattened_axes_are_products_of_their_sources(data: st.DataObject) -> None:
    sizes, world = data.draw(fsdp2_topologies())
    plan = plan_mesh("fsdp2", sizes, world_size=world)
    assert plan.device_mesh is not None
    for name, sources in plan.device_mesh.flattened.items():
        assert plan.size(name) == prod(plan.size(s) for s in sources)
        for rank in range(0, world, max(1, world // 7)):
            flat_group = set(plan.group(name, rank))
            # the flattened group is exactly the ranks reachable by moving along its source axes
            reachable = {rank}
            for source in sources:
                reachable = {m for r in reachable for m in plan.group(source, r)}
            assert flat_group == reachable


@settings(max_examples=200, deadline=None)
@given(data=st.data(), gpus=st.sampled_from([1, 2, 3, 4, 6, 8, 16, 72]))
def test_node_spans_match_enumeration(data: st.DataObject, gpus: int) -> None:
    sizes, world = data.draw(fsdp2_topologies())
    ranks = data.draw(rank_orders(world))
    plan = plan_mesh(
        "fsdp2",
        sizes,
        world_size=world if ranks is None else None,
        ranks=ranks,
        cluster=ClusterShape(gpus_per_node=gpus),
    )
    for axis in plan.axis_names:
        expected = max(len({r // gpus for r in group}) for group in plan.groups(axis))
        assert units_spanned(plan, axis, gpus) == expected, axis
