"""The context-parallel split (NeMo 0.7.0's ``cp_ring_degree`` × ``cp_ulysses_degree``) in the planner."""

from __future__ import annotations

import pytest

from meshctx import MeshPlan, ParallelismSizes, TopologyError, plan_mesh, validate_topology
from meshctx.plan.request import TopologyRequest


@pytest.mark.parametrize(("ring", "ulysses", "expected"), [(1, None, (1, 4)), (2, None, (2, 2)), (4, 1, (4, 1))])
def test_a_split_that_multiplies_out_to_cp_is_serialized_in_the_plan(
    ring: int, ulysses: int | None, expected: tuple[int, int]
) -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(cp_size=4), world_size=8, cp_ring_degree=ring, cp_ulysses_degree=ulysses)
    assert plan.cp_degrees == expected
    data = plan.to_dict()
    assert data["cp_degrees"] == {"ring": expected[0], "ulysses": expected[1]}
    assert MeshPlan.from_dict(data).cp_degrees == expected
    # policy for the attention runtime, not topology: the fingerprint is the plain plan's
    assert plan.fingerprint() == plan_mesh("fsdp2", ParallelismSizes(cp_size=4), world_size=8).fingerprint()


def test_no_context_parallelism_has_no_split_in_the_plan() -> None:
    assert "cp_degrees" not in plan_mesh("fsdp2", ParallelismSizes(), world_size=4).to_dict()


@pytest.mark.parametrize(("ring", "ulysses"), [(3, None), (2, 3), (1, 2)])
def test_a_split_that_does_not_multiply_out_is_refused_with_a_fix(ring: int, ulysses: int | None) -> None:
    report = validate_topology(
        "fsdp2", ParallelismSizes(cp_size=4), world_size=8, cp_ring_degree=ring, cp_ulysses_degree=ulysses
    )
    assert not report.valid and [p.code.value for p in report.problems] == ["cp_degrees_mismatch"]
    problem = report.problems[0]
    assert problem.fields == ("cp_ring_degree", "cp_ulysses_degree", "cp_size")
    assert f"cp_ring_degree {ring}" in problem.message and "cp_size 4" in problem.message
    assert "1×4, 2×2, 4×1" in problem.hint


def test_invalid_degrees_are_invalid_sizes_and_the_request_carries_them() -> None:
    with pytest.raises(TopologyError) as err:
        plan_mesh("fsdp2", ParallelismSizes(cp_size=2), world_size=4, cp_ring_degree=0)
    assert err.value.codes == ("invalid_size",) and err.value.problems[0].fields == ("cp_ring_degree",)
    request = TopologyRequest(sizes=ParallelismSizes(cp_size=2), world_size=4, cp_ring_degree=2, cp_ulysses_degree=1)
    assert request.to_dict()["cp_ring_degree"] == 2 and request.validate().plan.cp_degrees == (2, 1)  # type: ignore[union-attr]
    assert "cp_ring_degree" not in TopologyRequest(world_size=4).to_dict()
