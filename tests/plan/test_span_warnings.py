"""The warning that tp or ep groups leave their node or NVLink domain counts the groups that do."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshctx.plan import ClusterShape, plan_mesh
from meshctx.plan.cluster import groups_crossing
from meshctx.plan.request import TopologyRequest
from meshctx.plan.sizes import ParallelismSizes


def test_only_the_tp_groups_that_straddle_an_nvlink_domain_are_counted() -> None:
    """NVL72 on 4-GPU nodes: 576 ranks, tp 16, pp 4: 36 tp groups, of which the 4 that straddle 72, 216, 360 and 504
    span two domains."""
    report = TopologyRequest(
        nnodes=144,
        nproc_per_node=4,
        cluster=ClusterShape(gpus_per_node=4, nvlink_domain=72),
        sizes=ParallelismSizes(tp_size=16, pp_size=4),
    ).validate()
    [warning] = report.warnings
    assert warning.code.value == "axis_spans_nvlink_domain"
    assert warning.message.startswith("4 of the 36 tp groups of 16 ranks span 2 NVLink domains of 72 ranks")


def test_groups_that_all_leave_their_node_keep_the_each_wording() -> None:
    [warning] = (
        TopologyRequest(world_size=64, cluster=ClusterShape(gpus_per_node=8), sizes=ParallelismSizes(tp_size=16))
        .validate()
        .warnings
    )
    assert warning.message == "Each tp group of 16 ranks spans 2 nodes of 8 ranks, so its collectives leave NVLink."


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16]),
    st.sampled_from([1, 2, 3, 4]),
    st.sampled_from([1, 2, 4, 8]),
    st.integers(1, 40),
    st.sampled_from([2, 3, 4, 6, 8, 72]),
)
def test_the_count_is_the_groups_an_enumeration_finds_crossing(tp: int, pp: int, ep: int, dp: int, unit: int) -> None:
    world = tp * pp * dp
    sizes = ParallelismSizes(tp_size=tp, pp_size=pp, ep_size=ep if (dp * tp) % ep == 0 else 1)
    plan = plan_mesh("fsdp2", sizes, world_size=world, cluster=ClusterShape(gpus_per_node=unit))
    for axis in ("tp", "ep", "dp_shard", "pp"):
        if axis not in plan.layouts:
            continue
        groups = plan.layout(axis).all_groups(world)
        assert groups_crossing(plan, axis, unit) == sum(len({r // unit for r in g}) > 1 for g in groups)
