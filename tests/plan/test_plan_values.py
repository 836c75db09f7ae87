"""A plan is a plain value: it pickles, deep-copies and goes through ``dataclasses.asdict`` (NeMo's
``DistributedSetup`` does all three to the context that carries it), and what it shares stays read-only."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from meshctx import ParallelismSizes, plan_mesh
from meshctx.plan import AxisLayout, ClusterShape, MeshPlan, memo
from meshctx.plan.frozen import FrozenDict

PLANS = [
    ("fsdp2", ParallelismSizes(pp_size=2, dp_replicate_size=2, cp_size=2, tp_size=2, ep_size=4), 32, None),
    ("megatron_fsdp", ParallelismSizes(cp_size=2), 8, None),
    ("ddp", ParallelismSizes(), 4, None),
    ("fsdp2", ParallelismSizes(tp_size=2), 4, [7, 5, 3, 1]),
]


@pytest.mark.parametrize(("strategy", "sizes", "world", "ranks"), PLANS)
def test_plans_pickle_and_copy_to_equal_plans(
    strategy: str, sizes: ParallelismSizes, world: int, ranks: list[int] | None
) -> None:
    plan = plan_mesh(strategy, sizes, world_size=world if ranks is None else 8, ranks=ranks)
    for twin in (pickle.loads(pickle.dumps(plan)), copy.deepcopy(plan), copy.copy(plan)):
        assert twin == plan
        assert twin.fingerprint() == plan.fingerprint()
        assert twin.to_dict() == plan.to_dict()
    as_dict = dataclasses.asdict(plan)
    assert as_dict["layouts"] == {axis: dataclasses.asdict(layout) for axis, layout in plan.layouts.items()}


def test_shared_mappings_stay_read_only() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=4)
    assert plan.device_mesh is not None
    for mapping in (plan.layouts, plan.device_mesh.flattened):
        assert isinstance(mapping, FrozenDict)
        key = next(iter(mapping))
        with pytest.raises(TypeError, match="read-only"):
            mapping[key] = mapping[key]  # type: ignore[index]
        with pytest.raises(TypeError, match="read-only"):
            mapping.pop(key)  # type: ignore[attr-defined]
    again = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=4)
    assert again.layouts == plan.layouts and pickle.loads(pickle.dumps(again.layouts)) == plan.layouts


def test_plan_values_are_slotted_and_keep_nothing_on_the_instance() -> None:
    plan = plan_mesh(
        "fsdp2", ParallelismSizes(tp_size=2, ep_size=2), world_size=8, cluster=ClusterShape(gpus_per_node=2)
    )
    plan.to_json(), plan.fingerprint(), plan.rank_view(3)  # everything a memo could keep
    assert plan.device_mesh is not None and plan.moe_mesh is not None
    values = (plan, plan.device_mesh, plan.moe_mesh, plan.layouts["tp"], plan.sizes, ParallelismSizes())
    for value in values:
        assert not hasattr(value, "__dict__"), type(value).__name__


def test_a_plan_changed_or_read_back_is_fingerprinted_from_its_own_content() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=8)
    built = plan.fingerprint()
    changed = dataclasses.replace(plan, layouts=FrozenDict({**plan.layouts, "tp": AxisLayout((2,), (4,))}))
    assert changed.fingerprint() != built
    body = changed.to_dict()
    assert body["fingerprint"] == changed.fingerprint()
    del body["fingerprint"]
    assert MeshPlan.from_dict(body).fingerprint() == changed.fingerprint()
    assert plan.fingerprint() == built  # the kept one is untouched


def test_plans_answer_the_same_once_their_topology_is_forgotten() -> None:
    cluster = ClusterShape(gpus_per_node=4, nvlink_domain=8)
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=4), world_size=32, cluster=cluster)
    answers = (plan.to_json(), plan.to_dict(), plan.fingerprint(), plan.parallelize_axis_kwargs())
    memo.clear()
    assert (plan.to_json(), plan.to_dict(), plan.fingerprint(), plan.parallelize_axis_kwargs()) == answers
    again = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=4), world_size=32, cluster=cluster)
    assert again.layouts is not plan.layouts and again.to_json() == answers[0]


def test_rank_subsets_find_their_own_positions() -> None:
    subsets = ([9, 3, 5, 7], [0, 2, 4, 6, 8, 10], [11, 10])
    plans = [plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=12, ranks=r) for r in subsets]
    for _ in range(2):  # subsets asked about once, then many times, in turn
        for plan in plans:
            assert plan.ranks is not None
            first = plan.ranks[-1]
            assert plan.position(first) == len(plan.ranks) - 1
            assert [plan.position(r) for r in plan.ranks] == list(range(len(plan.ranks)))
            with pytest.raises(ValueError, match="not one of this mesh's ranks"):
                plan.position(1)
            assert plan.rank_view(first)["coordinates"] == plan.coordinates(first)
