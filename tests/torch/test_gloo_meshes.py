"""Real gloo jobs (1, 2, 4, 8 processes): every axis's process group on every rank equals the plan's group."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctx import ParallelismSizes, validate_topology
from tests.torch.torch_worlds import run_gloo_world

S = dict  # sizes

CASES: dict[int, list[dict]] = {
    1: [
        {"strategy": "fsdp2"},
        {"strategy": "megatron_fsdp"},
        {"strategy": "ddp"},
    ],
    2: [
        {"strategy": "fsdp2", "sizes": S(tp_size=2)},
        {"strategy": "fsdp2", "sizes": S(cp_size=2)},
        {"strategy": "fsdp2", "sizes": S(pp_size=2)},
        {"strategy": "fsdp2", "sizes": S(ep_size=2)},
        {"strategy": "mfsdp", "sizes": S(cp_size=2)},
        {"strategy": "ddp"},
        {"strategy": "fsdp2", "ranks": [1]},
        {"strategy": "fsdp2", "sizes": S(tp_size=2), "ranks": [1, 0]},
    ],
    4: [
        {"strategy": "fsdp2", "sizes": S(dp_replicate_size=2)},  # HSDP 2x2
        {"strategy": "fsdp2", "sizes": S(tp_size=2, cp_size=2)},
        {"strategy": "fsdp2", "sizes": S(pp_size=2, tp_size=2)},
        {"strategy": "fsdp2", "sizes": S(ep_size=4)},
        {"strategy": "fsdp2", "sizes": S(tp_size=2, ep_size=2)},
        {"strategy": "megatron_fsdp", "sizes": S(cp_size=2, tp_size=2)},
        {"strategy": "megatron_fsdp", "sizes": S(dp_size=2, cp_size=2)},
        {"strategy": "ddp"},
        {"strategy": "fsdp2", "sizes": S(tp_size=2, ep_size=2), "ranks": [3, 1]},
        {"strategy": "ddp", "ranks": [0, 2]},
        {"strategy": "fsdp2", "sizes": S(tp_size=9)},  # invalid on every rank: TopologyError, no groups
    ],
    8: [
        {"strategy": "fsdp2", "sizes": S(dp_replicate_size=2, cp_size=2)},
        {"strategy": "fsdp2", "sizes": S(pp_size=2, dp_replicate_size=2, cp_size=2)},  # dp = dp_replicate: invalid
        {"strategy": "fsdp2", "sizes": S(pp_size=2, tp_size=2, ep_size=4)},
        {"strategy": "fsdp2", "sizes": S(dp_replicate_size=2, tp_size=2, ep_size=2)},
        {"strategy": "fsdp2", "sizes": S(cp_size=2, tp_size=2, ep_size=8)},
        {"strategy": "megatron_fsdp", "sizes": S(dp_size=2, cp_size=2, tp_size=2)},
        {"strategy": "ddp"},
        # two models in one job: every rank builds both, each rank is a member of one
        {"strategy": "fsdp2", "sizes": S(tp_size=2, ep_size=2), "ranks": [7, 6, 5, 4]},
        {"strategy": "fsdp2", "sizes": S(pp_size=2, tp_size=2), "ranks": [0, 1, 2, 3]},
        {"strategy": "megatron_fsdp", "sizes": S(cp_size=2), "ranks": [1, 3, 5, 7]},
    ],
}


@pytest.mark.torch
@pytest.mark.timeout(300)
@pytest.mark.parametrize("world_size", sorted(CASES))
def test_every_axis_group_matches_the_plan(world_size: int, tmp_path: Path) -> None:
    cases = CASES[world_size]
    reports = run_gloo_world(world_size, cases, tmp_path)
    for index, case in enumerate(cases):
        sizes = ParallelismSizes(**case.get("sizes", {}))
        verdict = validate_topology(case["strategy"], sizes, world_size=world_size, ranks=case.get("ranks"))
        if not verdict.valid:  # build raised TopologyError with the same problems on every rank
            assert all(r[index] == {"error": [p.code.value for p in verdict.problems]} for r in reports), case
            continue
        plan = verdict.plan
        assert plan is not None
        members = set(case.get("ranks") or range(world_size))
        for rank, per_case in enumerate(reports):
            got = per_case[index]
            where = f"case {case} rank {rank}"
            assert got["planned"] == plan.fingerprint(), where
            assert got["member"] == (rank in members), where
            if plan.strategy.value != "ddp" or "ranks" not in case:  # a subset's DDP group is a live ProcessGroup
                assert got["copies"] == dict.fromkeys(("pickle", "deepcopy"), plan.fingerprint()), where
            if rank not in members:  # the subset's meshes without this rank's groups, as NeMo hands them out
                assert got["device_mesh"] is (plan.device_mesh is not None), where
                if plan.device_mesh is not None:
                    assert got["sizes"] == [plan.sizes.tp, plan.sizes.dp, plan.sizes.ep], where
                continue
            assert got["live"] == plan.fingerprint(), where
            expected_axes = plan.axis_names
            device = plan.device_mesh is not None
            assert sorted(got["groups"]) == sorted(expected_axes), where
            for axis in expected_axes:
                group = plan.group(axis, rank)
                # torch's process groups list their ranks sorted; the mesh keeps the plan's order
                assert got["groups"][axis] == sorted(group), f"{where} axis {axis}"
                if device:
                    assert got["order"][axis] == group, f"{where} axis {axis}: mesh order"
                assert got["sums"][axis] == sum(group), f"{where} axis {axis}: all_reduce over the group"
            assert got["mesh"] == (plan.mesh_ranks() if plan.device_mesh else None), where
            s = plan.sizes
            assert got["sizes"] == {
                "tp_size": s.tp,
                "pp_size": s.pp,
                "cp_size": s.cp,
                "ep_size": s.ep,
                "dp_size": s.dp if device else None,
                "dp_replicate_size": (s.dp_replicate if plan.strategy.value == "fsdp2" else None) if device else None,
                "dp_shard_size": s.dp_shard if plan.strategy.value == "fsdp2" else 1,
            }, where
            assert got["kwargs"] == [str(v) for v in plan.pipeline_axis_kwargs().values()], where
