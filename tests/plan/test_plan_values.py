"""A plan is a plain value: it pickles, deep-copies and goes through ``dataclasses.asdict`` (NeMo's
``DistributedSetup`` does all three to the context that carries it), and what it shares stays read-only."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from meshctx import ParallelismSizes, plan_mesh
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
