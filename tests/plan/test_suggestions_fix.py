"""Every suggestion fixes the problems it was offered for: applied to the request, it validates."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctx.plan import ClusterShape, ModelShape
from meshctx.plan.hints import HINTED
from meshctx.plan.problems import Code
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
                num_key_value_heads=draw(st.sampled_from([None, 4, 6])),
                num_experts=draw(st.sampled_from([None, 8, 6, 60, 250])),
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


#: A size a hint proposes: ``tp_size 2, 4 or 8``, ``dp_size=8``.
HINTED_SIZES = re.compile(r"\b([a-z_]+_size)[ =](\d+(?:, \d+)*(?: or \d+)?)")


#: Problems of the world or of the sizes' own values: no size set is searched for those.
WORLD_PROBLEMS = {Code.WORLD_SIZE_MISMATCH, Code.INVALID_SIZE, Code.INVALID_RANKS, Code.NPROC_EXCEEDS_GPUS_PER_NODE}


def hinted(hint: str) -> list[tuple[str, int]]:
    return [(field, int(v)) for field, values in HINTED_SIZES.findall(hint) for v in re.findall(r"\d+", values)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_size_a_hint_proposes_fixes_its_problem_and_breaks_nothing(request: TopologyRequest) -> None:
    """The sizes a hint names, each set alone, remove that problem and add none; a hint built from the suggestions
    (``meshctx.plan.hints``) names only sizes that make the whole request valid."""
    report = request.validate()
    if {p.code for p in report.problems} & WORLD_PROBLEMS:
        return  # no sizes fix a world that contradicts itself (sizes are not searched then)
    before = {(p.code, p.fields) for p in report.problems}
    for problem in report.problems:
        for field, value in hinted(problem.hint):
            fixed = replace(request, sizes=replace(request.sizes, **{field: value})).validate(suggest=False)
            now = {(p.code, p.fields) for p in fixed.problems}
            assert (problem.code, problem.fields) not in now and now <= before, (request, problem.hint, value, now)
            if problem.code in HINTED and len(report.problems) == 1:
                assert fixed.valid, (request, problem.hint, field, value, now)


def advice(request: TopologyRequest) -> tuple[list[str], list[dict[str, object]]]:
    report = request.validate()
    return [p.hint for p in report.problems], [s.sizes.to_dict() for s in report.suggestions]


def test_the_experts_hint_names_the_sizes_the_suggestions_use() -> None:
    request = TopologyRequest(world_size=64, sizes=ParallelismSizes(ep_size=8), model=ModelShape(num_experts=60))
    [hint], suggestions = advice(request)
    assert [s["ep_size"] for s in suggestions] == [4, 2, 1]
    assert hint.endswith("e.g. ep_size 4, 2 or 1.") and "6, 10 or 12" not in hint


def test_a_fix_far_from_the_request_is_still_found() -> None:
    request = TopologyRequest(world_size=256, sizes=ParallelismSizes(ep_size=64), model=ModelShape(num_experts=250))
    [hint], suggestions = advice(request)
    assert [s["ep_size"] for s in suggestions] == [2, 1]
    assert hint.endswith("e.g. ep_size 2 or 1.") and "125" not in hint and "25, 50" not in hint


def test_suggestions_that_keep_tp_inside_a_node_come_first() -> None:
    request = TopologyRequest(
        world_size=60, sizes=ParallelismSizes(tp_size=8, pp_size=2), cluster=ClusterShape(gpus_per_node=4)
    )
    report = request.validate()
    shapes = [(s.sizes.tp_size, s.sizes.pp_size) for s in report.suggestions]
    assert (2, 2) in shapes and (4, 3) in shapes
    for suggestion in report.suggestions:  # every one keeps each tp group on one node of 4
        assert replace(request, sizes=suggestion.sizes).validate().warnings == ()
    assert "tp_size 2 or 1" in report.problems[0].hint
