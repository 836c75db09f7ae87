"""Every suggestion fixes the problems it was offered for: applied to the request, it validates."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctx.plan import ClusterShape, ModelShape
from meshctx.plan.request import TopologyRequest
from meshctx.plan.sizes import ParallelismSizes

degree = st.sampled_from([1, 1, 2, 3, 4, 6, 8, 16])
optional = st.one_of(st.none(), st.sampled_from([1, 2, 3, 4, 8, 12]))


@st.composite
def requests(draw: st.DrawFn) -> TopologyRequest:
    sizes = ParallelismSizes(
        tp_size=draw(degree),
        pp_size=draw(degree),
        cp_size=draw(st.sampled_from([1, 1, 2, 4])),
        ep_size=draw(st.sampled_from([1, 1, 2, 4, 8])),
        dp_size=draw(optional),
        dp_replicate_size=draw(optional),
    )
    strategy = draw(st.sampled_from(["fsdp2", "fsdp2", "megatron_fsdp", "ddp"]))
    world = draw(st.sampled_from(["size", "nodes", "ranks"]))
    request = TopologyRequest(strategy=strategy, sizes=sizes)
    if world == "size":
        request = replace(request, world_size=draw(st.integers(1, 96)))
    elif world == "nodes":
        nproc = draw(st.sampled_from([1, 2, 4, 6, 8]))
        request = replace(request, nnodes=draw(st.integers(1, 12)), nproc_per_node=nproc)
        if draw(st.booleans()):
            request = replace(request, world_size=draw(st.integers(1, 96)))
        if draw(st.booleans()):
            request = replace(request, cluster=ClusterShape(gpus_per_node=draw(st.sampled_from([2, 4, 8]))))
    else:
        ranks = draw(st.lists(st.integers(0, 40), min_size=1, max_size=32))
        request = replace(request, ranks=ranks, world_size=draw(st.sampled_from([None, 41, 64])))
    if draw(st.booleans()):
        request = replace(
            request,
            model=ModelShape(
                num_attention_heads=draw(st.sampled_from([None, 8, 12, 32])),
                num_experts=draw(st.sampled_from([None, 8, 6])),
                num_hidden_layers=draw(st.sampled_from([None, 2, 24])),
            ),
        )
    return request


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_suggestion_applied_validates(request: TopologyRequest) -> None:
    report = request.validate()
    if report.valid:
        assert report.suggestions == ()
        return
    for suggestion in report.suggestions:
        fixed = replace(request, sizes=suggestion.sizes).validate(suggest=False)
        assert fixed.valid, (request, suggestion, [p.code for p in fixed.problems])


def test_no_suggestion_for_a_world_that_disagrees_with_its_nodes() -> None:
    report = TopologyRequest(world_size=16, nnodes=2, nproc_per_node=4, sizes=ParallelismSizes(tp_size=8)).validate()
    assert [p.code.value for p in report.problems] == ["world_size_mismatch"]
    assert report.suggestions == ()


def test_no_suggestion_for_duplicate_ranks() -> None:
    report = TopologyRequest(ranks=[0, 1, 2, 3, 4, 5, 6, 7, 8, 8], sizes=ParallelismSizes(tp_size=2)).validate()
    assert "invalid_ranks" in [p.code.value for p in report.problems]
    assert report.suggestions == ()


def test_a_fixable_problem_still_gets_suggestions_that_fix_it() -> None:
    request = TopologyRequest(world_size=60, sizes=ParallelismSizes(tp_size=8, pp_size=2))
    report = request.validate()
    assert report.suggestions
    assert all(replace(request, sizes=s.sizes).validate().valid for s in report.suggestions)
