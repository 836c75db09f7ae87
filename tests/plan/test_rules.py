"""Every topology rule: its code, the fields it names, the numbers in its message and a usable hint."""

from __future__ import annotations

import pytest

from meshctx import DDPConfig, FSDP2Config, MegatronFSDPConfig, ParallelismSizes
from meshctx.plan import ClusterShape, ModelShape, TopologyError, plan_mesh, validate_topology
from meshctx.plan.problems import Problem


def codes(report_problems: tuple[Problem, ...]) -> list[str]:
    return [p.code.value for p in report_problems]


def one(strategy: str, world: int | None = 64, **sizes: object) -> Problem:
    report = validate_topology(strategy, ParallelismSizes(**sizes), world_size=world)  # type: ignore[arg-type]
    assert not report.valid and report.plan is None
    assert len(report.problems) == 1, [str(p) for p in report.problems]
    return report.problems[0]


def test_valid_fsdp2_resolves_every_size() -> None:
    plan = plan_mesh(
        "fsdp2", ParallelismSizes(tp_size=8, pp_size=2, cp_size=2, ep_size=4, dp_replicate_size=2), world_size=128
    )
    assert plan.sizes.to_dict() == {
        "dp": 4,
        "dp_replicate": 2,
        "dp_shard": 2,
        "tp": 8,
        "pp": 2,
        "cp": 2,
        "ep": 4,
        "ep_shard": 16,
    }
    assert plan.device_mesh is not None and plan.moe_mesh is not None
    assert [a.value for a in plan.device_mesh.axes] == ["pp", "dp_replicate", "dp_shard", "cp", "tp"]
    assert plan.device_mesh.shape == (2, 2, 2, 2, 8)
    assert plan.moe_mesh.shape == (16, 4)


def test_ep_spanning_the_whole_stage_has_ep_shard_one() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=2, ep_size=8), world_size=8)
    assert (plan.sizes.ep, plan.sizes.ep_shard) == (8, 1)
    assert plan.group("ep", 5) == list(range(8)) and plan.group("ep_shard", 5) == [5]


def test_megatron_and_ddp_shapes() -> None:
    mfsdp = plan_mesh("mfsdp", ParallelismSizes(tp_size=2, cp_size=2), world_size=16)
    assert mfsdp.device_mesh is not None
    assert [a.value for a in mfsdp.device_mesh.axes] == ["dp", "cp", "tp"]
    assert dict(mfsdp.device_mesh.flattened) == {"dp_cp": ("dp", "cp")}
    assert plan_mesh("megatron-fsdp", ParallelismSizes(tp_size=2), world_size=16).device_mesh.flattened == {}  # type: ignore[union-attr]
    ddp = plan_mesh(DDPConfig(), world_size=6)
    assert ddp.device_mesh is None and ddp.moe_mesh is None
    assert ddp.groups("dp") == [[0, 1, 2, 3, 4, 5]]
    assert ddp.sizes.dp == 6 and ddp.sizes.dp_replicate == 6 and ddp.sizes.dp_shard == 1


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (
            FSDP2Config(),
            {
                # NeMo's HSDP fix: dp_replicate is a mesh dim and dp_shard_cp exists (flattened), so FSDP spans
                # every replica, even when dp_replicate is 1
                "dp_axis_names": ("dp_replicate", "dp_shard_cp"),
                "cp_axis_name": "cp",
                "tp_axis_name": "tp",
                "ep_axis_name": "ep",
                "ep_shard_axis_names": ("ep_shard",),
            },
        ),
        (
            MegatronFSDPConfig(),
            {
                "dp_axis_names": ("dp_shard_cp",),
                "cp_axis_name": "cp",
                "tp_axis_name": "tp",
                "ep_axis_name": None,
                "ep_shard_axis_names": None,
            },
        ),
        (
            DDPConfig(),
            {
                "dp_axis_names": ("dp_shard_cp",),
                "cp_axis_name": None,
                "tp_axis_name": None,
                "ep_axis_name": None,
                "ep_shard_axis_names": None,
            },
        ),
    ],
)
def test_axis_kwargs_match_nemo(strategy: object, expected: dict[str, object]) -> None:
    ep = 2 if isinstance(strategy, FSDP2Config) else 1
    plan = plan_mesh(strategy, ParallelismSizes(ep_size=ep), world_size=4)  # type: ignore[arg-type]
    assert plan.parallelize_axis_kwargs() == expected
    assert plan.pipeline_axis_kwargs() == {"pp_axis_name": "pp", **expected}


def test_fsdp2_without_ep_has_no_moe_kwargs() -> None:
    kwargs = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=4).parallelize_axis_kwargs()
    assert kwargs["ep_axis_name"] is None and kwargs["ep_shard_axis_names"] is None


def test_invalid_size() -> None:
    report = validate_topology("fsdp2", ParallelismSizes(tp_size=0, pp_size=2.0, dp_size=-1), world_size=8)  # type: ignore[arg-type]
    assert codes(report.problems) == ["invalid_size"] * 3
    assert [p.fields for p in report.problems] == [("tp_size",), ("pp_size",), ("dp_size",)]
    assert "got 0" in report.problems[0].message and "got 2.0" in report.problems[1].message
    assert codes(validate_topology("fsdp2", world_size=0).problems) == ["invalid_size"]
    assert validate_topology("fsdp2").problems[0].fields == ("world_size",)
    bools = validate_topology("fsdp2", ParallelismSizes(tp_size=True), world_size=8)  # type: ignore[arg-type]
    assert codes(bools.problems) == ["invalid_size"]


def test_world_size_not_divisible_names_numbers_and_fixes() -> None:
    problem = one("fsdp2", 60, tp_size=8, pp_size=2)
    assert problem.code.value == "world_size_not_divisible"
    assert problem.fields == ("world_size", "tp_size", "cp_size", "pp_size")
    assert "60" in problem.message and "16" in problem.message
    assert "48 or 64" in problem.hint


def test_world_size_mismatch_when_dp_given() -> None:
    problem = one("fsdp2", 64, tp_size=8, dp_size=4)
    assert problem.code.value == "world_size_mismatch"
    assert "= 32" in problem.message and "64" in problem.message
    assert "dp_size=8" in problem.hint


def test_dp_replicate_not_divisor_and_equals_dp() -> None:
    problem = one("fsdp2", 12, dp_replicate_size=5)
    assert problem.code.value == "dp_replicate_not_divisor" and "12" in problem.message
    assert one("fsdp2", 8, dp_replicate_size=8).code.value == "dp_replicate_equals_dp"
    assert "ddp" in one("fsdp2", 8, dp_replicate_size=8).hint


def test_strategy_unsupported_axes_each_reported() -> None:
    report = validate_topology(
        "ddp", ParallelismSizes(tp_size=2, pp_size=2, cp_size=2, ep_size=2, dp_replicate_size=2), world_size=64
    )
    assert codes(report.problems) == ["strategy_unsupported_axis"] * 5
    assert {p.fields[0] for p in report.problems} == {"tp_size", "pp_size", "cp_size", "ep_size", "dp_replicate_size"}
    report = validate_topology("megatron_fsdp", ParallelismSizes(pp_size=2, ep_size=2, tp_size=2), world_size=8)
    assert codes(report.problems) == ["strategy_unsupported_axis"] * 2
    assert "fsdp2" in report.problems[0].hint


def test_ep_not_divisor() -> None:
    problem = one("fsdp2", 24, tp_size=2, ep_size=5)
    assert problem.code.value == "ep_not_divisor"
    assert "24" in problem.message and problem.fields[0] == "ep_size"


def test_invalid_ranks() -> None:
    def rank_problem(ranks: object, world: int | None = None, **sizes: int) -> Problem:
        report = validate_topology("fsdp2", ParallelismSizes(**sizes), world_size=world, ranks=ranks)  # type: ignore[arg-type]
        assert codes(report.problems) == ["invalid_ranks"], [str(p) for p in report.problems]
        return report.problems[0]

    assert "unique" in rank_problem([0, 1, 1, 2]).message
    assert "≥ 0" in rank_problem([-1, 0]).message
    assert "< world_size 4" in rank_problem([2, 3, 4, 5], world=4).message
    assert "empty" in rank_problem([]).message
    assert "integers" in rank_problem(["a", 1]).message
    wrong_length = rank_problem([0, 1, 2], dp_size=4)
    assert "3 ranks are listed" in wrong_length.message


def test_every_problem_reported_together() -> None:
    report = validate_topology(
        "fsdp2",
        ParallelismSizes(tp_size=8, pp_size=2, dp_size=3, dp_replicate_size=2, ep_size=5),
        world_size=60,
        model=ModelShape(num_attention_heads=12, num_hidden_layers=1),
    )
    assert codes(report.problems) == [
        "world_size_mismatch",
        "dp_replicate_not_divisor",
        "ep_not_divisor",
        "heads_not_divisible",
        "layers_fewer_than_pp",
    ]
    with pytest.raises(TopologyError) as caught:
        plan_mesh("fsdp2", ParallelismSizes(tp_size=8, pp_size=2, dp_size=3, dp_replicate_size=2), world_size=60)
    assert caught.value.codes == ("world_size_mismatch", "dp_replicate_not_divisor")
    assert isinstance(caught.value, ValueError) and "Hint:" in str(caught.value)


def test_unknown_strategy() -> None:
    report = validate_topology("zero3", world_size=8)
    assert codes(report.problems) == ["unknown_strategy"]
    assert "fsdp2" in report.problems[0].hint


def test_model_checks() -> None:
    model = ModelShape(
        num_attention_heads=30,
        num_key_value_heads=6,
        num_experts=10,
        num_hidden_layers=3,
        seq_length=1000,
        global_batch_size=10,
        micro_batch_size=2,
    )
    report = validate_topology(
        "fsdp2", ParallelismSizes(tp_size=4, pp_size=4, cp_size=2, ep_size=4), world_size=64, model=model
    )
    assert codes(report.problems) == [
        "heads_not_divisible",
        "kv_heads_not_divisible",
        "experts_not_divisible",
        "layers_fewer_than_pp",
        "seq_len_not_divisible",
        "batch_not_divisible",
    ]
    seq = report.problems[4]
    assert "2·2·4 = 16" in seq.message and "1008" in seq.hint
    batch = report.problems[5]
    assert "2·2 = 4" in batch.message and batch.fields == (
        "model.global_batch_size",
        "model.micro_batch_size",
        "dp_size",
    )
    ok = validate_topology(
        "fsdp2",
        ParallelismSizes(tp_size=4),
        world_size=8,
        model=ModelShape(num_attention_heads=32, num_key_value_heads=8, seq_length=7),
    )
    assert ok.valid  # sequence length only matters with cp > 1
    bad = validate_topology("fsdp2", world_size=8, model=ModelShape(num_attention_heads=0))
    assert bad.problems[0].fields == ("model.num_attention_heads",)


def test_cluster_warnings_for_tp_and_ep_crossing_nodes() -> None:
    report = validate_topology(
        "fsdp2", ParallelismSizes(tp_size=16, ep_size=32), world_size=64, cluster=ClusterShape(gpus_per_node=8)
    )
    assert report.valid
    assert codes(report.warnings) == ["axis_spans_nodes", "axis_spans_nodes"]
    tp = report.warnings[0]
    assert "2 nodes" in tp.message and "1, 2, 4 or 8" in tp.hint
    assert "4 nodes" in report.warnings[1].message
    nvl = validate_topology(
        "fsdp2", ParallelismSizes(tp_size=8), world_size=144, cluster=ClusterShape(gpus_per_node=4, nvlink_domain=72)
    )
    assert nvl.valid and nvl.warnings == ()  # crossing nodes inside one NVL72 domain is fine
    spans = nvl.plan.to_dict()["cluster"]["spans"]  # type: ignore[union-attr,index]
    assert spans["tp"] == {"nodes": 2, "nvlink_domains": 1}
    assert spans["dp"] == {"nodes": 18, "nvlink_domains": 2}
    straddling = validate_topology(
        "fsdp2", ParallelismSizes(tp_size=16), world_size=144, cluster=ClusterShape(gpus_per_node=4, nvlink_domain=72)
    )
    assert "1 of the 9 tp groups of 16 ranks span 2 NVLink domains" in straddling.warnings[0].message  # ranks 64..79
    crossing = validate_topology(
        "fsdp2", ParallelismSizes(tp_size=16), world_size=144, cluster=ClusterShape(gpus_per_node=4, nvlink_domain=8)
    )
    assert codes(crossing.warnings) == ["axis_spans_nvlink_domain"]
    bad = validate_topology("fsdp2", world_size=8, cluster=ClusterShape(gpus_per_node=0))
    assert bad.problems[0].fields == ("cluster.gpus_per_node",)


def test_nnodes_and_nproc_per_node() -> None:
    report = validate_topology("fsdp2", ParallelismSizes(tp_size=16), nnodes=4, nproc_per_node=8)
    assert report.valid and report.plan is not None and report.plan.world_size == 32
    assert codes(report.warnings) == ["axis_spans_nodes"]  # nproc_per_node stands in for gpus_per_node
    mismatch = validate_topology("fsdp2", world_size=16, nnodes=4, nproc_per_node=8)
    assert codes(mismatch.problems) == ["world_size_mismatch"]
    for bad in ("0:4", "4:2", "x", 0):
        assert validate_topology("fsdp2", nnodes=bad, nproc_per_node=8).problems[0].fields == ("nnodes",)
    assert validate_topology("fsdp2", nnodes=2, nproc_per_node=0).problems[0].fields == ("nproc_per_node",)


def test_elastic_range_lists_every_world_size() -> None:
    report = validate_topology("fsdp2", ParallelismSizes(tp_size=8, pp_size=2), nnodes="1:5", nproc_per_node=8)
    assert [(w.nnodes, w.world_size, w.valid) for w in report.world_sizes or ()] == [
        (1, 8, False),
        (2, 16, True),
        (3, 24, False),
        (4, 32, True),
        (5, 40, False),
    ]
    assert not report.valid
    assert codes(report.problems) == ["elastic_range_invalid"]
    assert "2, 4" in report.problems[0].hint
    assert report.plan is not None and report.plan.world_size == 32  # the largest valid world
    allowed = validate_topology("fsdp2", ParallelismSizes(tp_size=8), nnodes="2:4", nproc_per_node=8)
    assert allowed.valid and allowed.plan is not None and allowed.plan.world_size == 32
    assert "world_sizes" in allowed.to_dict()


def test_suggestions_are_valid_and_keep_what_the_user_fixed() -> None:
    report = validate_topology("fsdp2", ParallelismSizes(tp_size=8, dp_size=4), world_size=64)
    assert report.suggestions, "an invalid request gets suggestions"
    first = report.suggestions[0]
    assert first.sizes.tp_size == 8 and first.sizes.dp_size is None
    for suggestion in report.suggestions:
        assert validate_topology("fsdp2", suggestion.sizes, world_size=64).valid
    layered = validate_topology(
        "fsdp2", ParallelismSizes(tp_size=8, pp_size=3), world_size=64, model=ModelShape(num_hidden_layers=2)
    )
    assert layered.suggestions[0].sizes.tp_size == 8
    for suggestion in layered.suggestions:
        assert suggestion.sizes.ep_size == 1 and suggestion.sizes.cp_size == 1  # never turned on for the user
        assert validate_topology("fsdp2", suggestion.sizes, world_size=64, model=ModelShape(num_hidden_layers=2)).valid
    ddp = validate_topology("ddp", ParallelismSizes(tp_size=2), world_size=8)
    assert ddp.suggestions[0].sizes.tp_size == 1
    assert len(ddp.suggestions) <= 5


def test_valid_report_has_no_suggestions_and_raise_for_problems_returns_plan() -> None:
    report = validate_topology("fsdp2", world_size=8)
    assert report.valid and report.suggestions == () and report.raise_for_problems() is report.plan
