"""The cases of issue 24 where the contiguous layout missed the optimum of the objective.

Each instance is small enough to state, and each assertion is at a lower bound or an exact optimum: the
report says ``optimal`` where it is proven (bound reached or exact search finished)."""

from __future__ import annotations

import pytest

from meshctx import ParallelismSizes, plan_mesh
from meshctx.place import Node, Topology, place
from meshctx.place.examples import dgx, nvl72
from tests.place.place_reference import distinct_vectors, reference_crossing


def _racks(racks: int, trays: int) -> Topology:
    """GB200-like: one NVLink domain per rack (trays of 4 GPUs), one InfiniBand leaf and spine for all."""
    return Topology.of(
        [Node(f"r{r}t{t:02d}", 4, f"rack{r}", "ib-leaf", "ib-spine") for r in range(racks) for t in range(trays)]
    )


def test_pipeline_stages_interleave_across_nvlink_domains() -> None:
    """8 nodes × 4 GPUs in 4 NVLink domains of 2: tp=4 pp=2 keeps each pp pair in a domain (contiguous
    stages put every pair across two)."""
    topology = Topology.of([Node(f"n{i}", 4, f"d{i // 2}", "l0", "s0") for i in range(8)])
    placement = place(plan_mesh("fsdp2", ParallelismSizes(tp_size=4, pp_size=2), world_size=32), topology)
    assert placement.axes["pp"].crossing.nvlink_domain == 0
    assert placement.order == ("n0", "n2", "n4", "n6", "n1", "n3", "n5", "n7")
    assert placement.baselines["natural"]["pp"].nvlink_domain == 16
    assert placement.optimal and placement.search.proof == "lower bound"
    vectors = [v for _, v in distinct_vectors(placement_plan(4, 2), topology, topology.names(), 4)]
    assert placement.vector() == min(vectors)


def placement_plan(tp: int, pp: int):  # type: ignore[no-untyped-def]
    return plan_mesh("fsdp2", ParallelismSizes(tp_size=tp, pp_size=pp), world_size=32)


def test_gb200_racks_keep_pipeline_groups_in_the_rack() -> None:
    """8 racks × 16 trays, tp=4 cp=2 pp=4: cp and pp both inside the rack's NVLink domain."""
    topology = _racks(8, 16)
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=4, cp_size=2, pp_size=4), world_size=512)
    placement = place(plan, topology)
    assert placement.axes["cp"].crossing.nvlink_domain == 0
    assert placement.axes["pp"].crossing.nvlink_domain == 0
    assert placement.baselines["natural"]["pp"].nvlink_domain == 128
    reported = {axis: entry.crossing.as_tuple() for axis, entry in placement.axes.items()}
    assert reported == reference_crossing(plan, topology, placement.order, 4)


def test_gb200_racks_keep_hsdp_replicas_in_the_rack() -> None:
    """tp=8 ep=32 pp=2 dp_replicate=2: the HSDP gradient all-reduce stays in NVLink (was 256 of 256 over
    InfiniBand), with tp and ep still inside the rack."""
    topology = _racks(8, 16)
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=32, pp_size=2, dp_replicate_size=2), world_size=512)
    placement = place(plan, topology)
    assert placement.axes["tp"].crossing.nvlink_domain == 0
    assert placement.axes["ep"].crossing.nvlink_domain == 0
    assert placement.axes["dp_replicate"].crossing.nvlink_domain == 0
    assert placement.baselines["natural"]["dp_replicate"].nvlink_domain == 256
    reported = {axis: entry.crossing.as_tuple() for axis, entry in placement.axes.items()}
    assert reported == reference_crossing(plan, topology, placement.order, 4)


def test_dgx_leaves_keep_pipeline_pairs_in_a_leaf() -> None:
    """The docs' DGX allocation (30, 20, 26, 20 nodes per leaf; leaves known, no spine), tp=8 ep=16 pp=2:
    ep pairs and pp partners share 4-node blocks, 23 of which fit the leaves — 16 pp groups cross (was
    every one of the 384)."""
    example = dgx()
    topology = Topology.of([Node(n.name, n.gpus, None, n.leaf, None) for n in example.topology.nodes])
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=16, pp_size=2), world_size=768)
    placement = place(plan, topology, example.allocation)
    assert placement.axes["ep"].crossing.leaf == 0
    # ep pairs and their pp partners form 4-node blocks: the leaves hold 7 + 5 + 6 + 5 = 23 of the 24, so
    # one block (2 pp classes × 8 groups) must cross a leaf — 16 is the optimum given ep at 0
    assert placement.axes["pp"].crossing.leaf == 16
    assert any("No allocated node has a spine" in w for w in placement.warnings)


def test_dgx_with_spines_pairs_pipeline_partners_where_the_stages_meet() -> None:
    """Three whole leaves (dgx[1-96]) under two spines: a stage fills spine 0's first leaf and half its
    second; aligning the stages puts the 8 ep pairs of each stage that share that leaf side by side."""
    example = dgx()
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=16, pp_size=2), world_size=768)
    placement = place(plan, example.topology, "dgx[1-96]")
    assert placement.axes["ep"].crossing.leaf == 0
    assert placement.axes["pp"].crossing.leaf == 256  # was 384: 16 of 48 pp pairs now share a leaf


def test_nvl72_example_keeps_data_parallel_shards_in_leaves() -> None:
    placement = nvl72().placement()
    assert placement.axes["dp_shard"].crossing.leaf == 8  # was 16


def test_nvlink_domain_spanning_two_leaves_keeps_tp_inside_it() -> None:
    """Domains d0 = {a, c} and d1 = {b, d} each span leaves l0 = {a, b} and l1 = {c, d}: tp over 2 nodes
    must pair a with c (NVLink, crossing a leaf) rather than a with b (one leaf, crossing NVLink)."""
    topology = Topology.of(
        [
            Node("a", 4, "d0", "l0", "s0"),
            Node("b", 4, "d1", "l0", "s0"),
            Node("c", 4, "d0", "l1", "s0"),
            Node("d", 4, "d1", "l1", "s0"),
        ]
    )
    placement = place(plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=16), topology)
    assert placement.axes["tp"].crossing.nvlink_domain == 0
    assert placement.optimal and placement.search.proof == "exact search"
    assert any("span more than one leaf" in w for w in placement.warnings)


def test_leaves_of_one_name_under_two_spines_are_two_leaves() -> None:
    """Kueue label values need only be unique under their parent: leaf "l0" under spine s0 and under s1
    are different switches, so a group over both crosses the leaf tier as it crosses the spine tier."""
    topology = Topology.of([Node(f"n{i}", 4, None, "l0", f"s{i // 2}") for i in range(4)])
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=16), world_size=16)
    placement = place(plan, topology)
    tp = placement.axes["tp"]
    assert tp.crossing.spine == 1 and tp.crossing.leaf == 1  # was leaf 0 with spine 1
    assert tp.lower_bound.leaf == 1


def test_exhaustive_mode_is_never_worse_and_says_so() -> None:
    example = dgx()
    default = example.placement()
    deep = place(example.plan, example.topology, example.allocation, search="exhaustive")
    assert deep.search.mode == "exhaustive" and default.search.mode == "default"
    assert deep.vector() <= default.vector()
    assert deep.search.orders >= default.search.orders
    assert deep.to_dict()["search"]["mode"] == "exhaustive"
    with pytest.raises(ValueError, match="default, exhaustive"):
        place(example.plan, example.topology, example.allocation, search="fast")
