"""Bad placement requests: every problem reported at once, each with a stable code and a fix."""

from __future__ import annotations

import pytest

from meshctx import ParallelismSizes, plan_mesh
from meshctx.place import Node, PlacementError, Topology, check_allocation, place
from meshctx.plan.problems import Code


def _topology() -> Topology:
    nodes = [Node(f"gpu-{i:03d}", 8, f"d{i // 4}", "leaf0", "spine0") for i in range(1, 9)]
    return Topology.of([*nodes, Node("fat-001", 4), Node("fat-002", 4)])


def test_every_problem_is_reported_together() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=32)
    with pytest.raises(PlacementError) as info:
        place(plan, _topology(), ["gpu-001", "gpu-001", "gpu-002", "fat-001", "nope-1", "nope-2"])
    codes = info.value.codes
    assert codes == ("duplicate_host", "unknown_node", "gpu_count_mismatch")
    text = str(info.value)
    assert "gpu-001" in text and "nope-1, nope-2" in text and "4 GPUs: fat-001" in text
    assert all(p.hint for p in info.value.problems)
    assert [p.to_dict()["code"] for p in info.value.problems] == list(codes)


def test_world_size_must_equal_nodes_times_gpus() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=32)
    (problem,) = check_allocation(plan, _topology(), ["gpu-001", "gpu-002", "gpu-003"])
    assert problem.code == Code.ALLOCATION_SIZE_MISMATCH
    assert "3 nodes × 8 GPUs = 24 ranks" in problem.message and "world size 32" in problem.message
    assert "Allocate 4 nodes" in problem.hint
    assert problem.fields == ("nodes", "world_size")


def test_a_hostlist_expression_is_an_allocation() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=32)
    placement = place(plan, _topology(), "gpu-[001-004]")
    assert sorted(placement.order) == ["gpu-001", "gpu-002", "gpu-003", "gpu-004"]


def test_empty_allocation_and_duplicate_topology_names() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=8)
    topology = Topology.of([Node("a", 8), Node("a", 8)])
    with pytest.raises(PlacementError) as info:
        place(plan, topology, [])
    assert info.value.codes == ("duplicate_host", "empty_allocation")
    assert info.value.problems[0].fields == ("topology.nodes",)


def test_a_permuted_rank_list_moves_groups_with_their_ranks() -> None:
    # ranks[p] is the global rank at mesh position p: the tp groups become {0, 2} and {1, 3}.
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=4, ranks=[0, 2, 1, 3])
    topology = Topology.of([Node("a", 2, "d0"), Node("b", 2, "d1")])
    placement = place(plan, topology)
    assert placement.axes["tp"].crossing.as_tuple() == (2, 2, 2, 2)  # no leaf or spine given: own units
    assert placement.axes["tp"].lower_bound.as_tuple() == (2, 2, 2, 2)


def test_the_plan_s_cluster_shape_must_match_the_nodes() -> None:
    from meshctx.plan import ClusterShape

    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=32, cluster=ClusterShape(gpus_per_node=4))
    (problem,) = check_allocation(plan, _topology(), ["gpu-001", "gpu-002", "gpu-003", "gpu-004"])
    assert problem.code == Code.GPU_COUNT_MISMATCH
    assert problem.fields == ("cluster.gpus_per_node", "topology.nodes.gpus")
    assert "--gpus-per-node 8" in problem.hint
