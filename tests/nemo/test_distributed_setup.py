"""NeMo's ``DistributedSetup.build`` (0.7.0: ``components/distributed/config.py``) driving meshctx's ``MeshContext``
through the one-line migration: NeMo's ``mesh`` module aliased to ``meshctx.mesh``."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

import meshctx
from tests.nemo.nemo_loader import load_nemo, meshctx_as_nemo_mesh
from tests.nemo.nemo_worlds import snapshot
from tests.torch.torch_worlds import fake_world

NEMO = load_nemo()

SETUPS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("fsdp2", {"tp_size": 2}, {}),
    ("fsdp2", {"dp_replicate_size": 2, "ep_size": 4}, {"moe_parallel_config": {"reshard_after_forward": True}}),
    ("fsdp2", {"pp_size": 2, "cp_size": 2, "tp_size": 2}, {"pipeline_config": {}}),
    ("mfsdp", {"cp_size": 2}, {"activation_checkpointing": True}),
    ("ddp", {}, {"activation_checkpointing": "selective"}),
]


def _setup(strategy: str, sizes: dict[str, Any], extra: dict[str, Any], **kwargs: Any) -> Any:
    """NeMo's recipe entry point: strategy by name, policy configs as dicts (it turns them into objects)."""
    return NEMO.config.DistributedSetup.build(strategy, NEMO.mesh.ParallelismSizes(**sizes), **extra, **kwargs)


@pytest.mark.torch
@pytest.mark.parametrize(("strategy", "sizes", "extra"), SETUPS)
@pytest.mark.parametrize("rank", [0, 13])
def test_distributed_setup_builds_meshctx_contexts_like_nemos(
    strategy: str, sizes: dict[str, Any], extra: dict[str, Any], rank: int
) -> None:
    with fake_world(16, rank):
        theirs = _setup(strategy, sizes, extra)
        with meshctx_as_nemo_mesh():
            ours = _setup(strategy, sizes, extra)
        assert type(ours.mesh_context) is meshctx.MeshContext
        assert type(theirs.mesh_context) is NEMO.mesh.MeshContext
        # DistributedSetup copies its policy into the context with dataclasses.replace: meshctx's plan survives
        assert ours.mesh_context.built_from is not None and ours.mesh_context.is_member
        assert ours.mesh_context.moe_parallel_config is ours.moe_parallel_config
        for name in ("strategy_config", "moe_parallel_config", "pipeline_config"):
            assert type(getattr(ours, name)) is type(getattr(theirs, name)), name
        ours.mesh_context.strategy_config = theirs.mesh_context.strategy_config  # equal policy, for the snapshot
        ours.mesh_context.moe_parallel_config = theirs.mesh_context.moe_parallel_config
        assert snapshot(ours.mesh_context, NEMO.mesh_utils, rank) == snapshot(
            theirs.mesh_context, NEMO.mesh_utils, rank
        )


@pytest.mark.torch
@pytest.mark.parametrize("rank", [2, 11])
def test_separate_student_and_teacher_meshes_as_nemos_kd_recipe_builds_them(rank: int) -> None:
    """NeMo's KD recipe: two rank subsets with ``world_size=len(ranks)``; every rank builds both and reads both
    meshes' rank tables (its KD bridge does)."""
    student, teacher = tuple(range(8)), tuple(range(8, 16))
    with fake_world(16, rank), meshctx_as_nemo_mesh():
        built = {
            name: NEMO.config.DistributedSetup.build(
                "fsdp2", meshctx.ParallelismSizes(**sizes), world_size=len(ranks), ranks=ranks
            )
            for name, ranks, sizes in (
                ("student", student, {"tp_size": 2, "dp_replicate_size": 2}),
                ("teacher", teacher, {"tp_size": 4}),
            )
        }
        for name, ranks in (("student", student), ("teacher", teacher)):
            ctx = built[name].mesh_context
            assert ctx.is_member is (rank in ranks)
            assert ctx.device_mesh is not None and ctx.device_mesh.mesh.flatten().tolist() == list(ranks)
            assert ctx.dp_size == ctx.built_from.sizes.dp and ctx.tp_size == ctx.built_from.sizes.tp
        assert built["student"].mesh_context._dp_axis_names() == ("dp_replicate", "dp_shard_cp")


@pytest.mark.torch
@pytest.mark.parametrize(("strategy", "sizes", "extra"), SETUPS[:2])
def test_distributed_setup_holding_meshctx_context_pickles_copies_and_converts_like_nemos(
    strategy: str, sizes: dict[str, Any], extra: dict[str, Any]
) -> None:
    """NeMo pickles, deep-copies and ``asdict``s its ``DistributedSetup``; with meshctx's context inside, the same
    calls work and the copies carry the plan (its layouts were once a mappingproxy, which none of them take)."""
    with fake_world(8, 3):
        theirs = _setup(strategy, sizes, extra)
        with meshctx_as_nemo_mesh():
            ours = _setup(strategy, sizes, extra)
        planned = ours.mesh_context.built_from.fingerprint()
        for copy_of in (lambda s: pickle.loads(pickle.dumps(s)), copy.deepcopy):
            copy_of(theirs)
            twin = copy_of(ours)
            assert twin.mesh_context.built_from.fingerprint() == planned
            assert twin.mesh_context.built_from == ours.mesh_context.built_from
            assert twin.mesh_context.tp_size == ours.mesh_context.tp_size
        as_dict = dataclasses.asdict(ours)
        assert set(as_dict) == set(dataclasses.asdict(theirs))
        plan = as_dict["mesh_context"]["built_from"]
        layouts = ours.mesh_context.built_from.layouts
        assert plan["layouts"] == {axis: dataclasses.asdict(layout) for axis, layout in layouts.items()}
