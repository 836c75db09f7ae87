"""The wire format: round trips, fingerprints and the pinned JSON shapes."""

from __future__ import annotations

import hashlib
import json

import pytest

from meshctx import ParallelismSizes
from meshctx.plan import AxisLayout, ClusterShape, MeshPlan, Problem, Suggestion, plan_mesh, validate_topology


def test_round_trip_preserves_everything() -> None:
    for plan in (
        plan_mesh(
            "fsdp2",
            ParallelismSizes(tp_size=2, pp_size=2, cp_size=2, ep_size=4, dp_replicate_size=2),
            world_size=32,
            cluster=ClusterShape(gpus_per_node=8, nvlink_domain=16),
        ),
        plan_mesh("megatron_fsdp", ParallelismSizes(cp_size=2), ranks=[9, 3, 5, 7]),
        plan_mesh("ddp", world_size=3),
    ):
        data = json.loads(json.dumps(plan.to_dict()))
        again = MeshPlan.from_dict(data)
        assert again == plan
        assert again.fingerprint() == plan.fingerprint()
        assert again.to_dict() == data


@pytest.mark.parametrize("strategy", ["fsdp2", "megatron_fsdp", "ddp"])
def test_the_fingerprint_hashes_the_canonical_json_of_the_topology(strategy: str) -> None:
    # Plans ``build`` makes have their canonical JSON written by orjson where it is installed; it must be json's,
    # byte for byte, or the service's fingerprints would no longer match the ones a job's MeshContext (which
    # may run without orjson) and a read-back plan compute.
    shapes = [
        {},
        {"tp_size": 8},
        {"tp_size": 8, "pp_size": 4, "ep_size": 8},
        {"cp_size": 2, "tp_size": 2},
        {"dp_replicate_size": 2, "cp_size": 2, "ep_size": 4},
        {"ep_size": 2, "cp_size": 4},
        {"tp_size": 3},
    ]
    checked = 0
    for world_size in (1, 8, 12, 96, 256, 3072, 131072, 1 << 20):
        for sizes in shapes:
            report = validate_topology(strategy, ParallelismSizes(**sizes), world_size=world_size)
            if report.plan is None:
                continue
            topology = report.plan.topology_dict()
            canonical = json.dumps(topology, sort_keys=True, separators=(",", ":")).encode()
            assert report.plan._canonical(topology) == canonical
            assert report.plan.fingerprint() == "sha256:" + hashlib.sha256(canonical).hexdigest()
            read_back = MeshPlan.from_dict(json.loads(json.dumps(report.plan.to_dict())))
            assert read_back.fingerprint() == report.plan.fingerprint()
            checked += 1
    assert checked >= 8


def test_from_dict_rejects_a_tampered_fingerprint() -> None:
    data = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=4).to_dict()
    data["layouts"]["tp"]["strides"] = [2]  # type: ignore[index]
    with pytest.raises(ValueError, match="fingerprint"):
        MeshPlan.from_dict(data)


def test_fingerprint_depends_on_topology_only() -> None:
    base = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=8)
    assert base.fingerprint().startswith("sha256:") and len(base.fingerprint()) == 7 + 64
    same = plan_mesh(
        "fsdp2", ParallelismSizes(tp_size=2, dp_size=4), world_size=8, cluster=ClusterShape(gpus_per_node=2)
    )
    assert same.fingerprint() == base.fingerprint()  # dp given or inferred, cluster context: same meshes
    assert plan_mesh("fsdp2", ParallelismSizes(cp_size=2), world_size=8).fingerprint() != base.fingerprint()
    shifted = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), ranks=list(range(8, 16)))
    assert shifted.fingerprint() != base.fingerprint()
    identity = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), ranks=list(range(8)))
    assert identity.ranks is None and identity.fingerprint() == base.fingerprint()


def test_validate_response_shape() -> None:
    body = validate_topology(
        "fsdp2", ParallelismSizes(tp_size=8, pp_size=2), world_size=64, cluster=ClusterShape(gpus_per_node=8)
    ).to_dict()
    assert set(body) == {"valid", "problems", "warnings", "suggestions", "plan"}
    plan = body["plan"]
    assert isinstance(plan, dict)
    assert {
        "strategy",
        "world_size",
        "ranks",
        "sizes",
        "device_mesh",
        "moe_mesh",
        "layouts",
        "kwargs",
        "fingerprint",
    } <= set(plan)
    assert set(plan["sizes"]) == {"dp", "dp_replicate", "dp_shard", "tp", "pp", "cp", "ep", "ep_shard"}
    assert plan["device_mesh"] == {
        "axes": ["pp", "dp_replicate", "dp_shard", "cp", "tp"],
        "shape": [2, 1, 4, 1, 8],
        "flattened": {
            "dp": ["dp_replicate", "dp_shard"],
            "dp_shard_cp": ["dp_shard", "cp"],
            "dp_cp": ["dp_replicate", "dp_shard", "cp"],
        },
    }
    assert plan["layouts"]["tp"] == {"size": 8, "sizes": [8], "strides": [1]}
    assert plan["layouts"]["pp"] == {"size": 2, "sizes": [2], "strides": [32]}
    assert plan["layouts"]["cp"] == {"size": 1, "sizes": [], "strides": []}
    assert plan["kwargs"]["pipeline"]["pp_axis_name"] == "pp"
    assert plan["kwargs"]["parallelize"]["dp_axis_names"] == ["dp_replicate", "dp_shard_cp"]  # NeMo's HSDP rule
    invalid = validate_topology("fsdp2", ParallelismSizes(tp_size=3), world_size=8).to_dict()
    assert invalid["plan"] is None and invalid["problems"][0]["code"] == "world_size_not_divisible"
    assert set(invalid["problems"][0]) == {"code", "severity", "fields", "message", "hint"}
    assert set(invalid["suggestions"][0]) == {"sizes", "reason"}


def test_rank_view_covers_every_axis() -> None:
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=2, cp_size=2, ep_size=4), world_size=16)
    view = plan.rank_view(5)
    assert view["rank"] == 5
    assert set(view["coordinates"]) == set(view["groups"]) == set(plan.axis_names)  # type: ignore[arg-type]
    assert view["groups"]["tp"] == [4, 5] and view["coordinates"]["tp"] == 1  # type: ignore[index]
    assert view["groups"]["ep"] == [4, 5, 6, 7]  # type: ignore[index]
    with pytest.raises(ValueError, match="outside"):
        plan.rank_view(16)


def test_compact_layout_at_huge_world_needs_no_enumeration() -> None:
    plan = plan_mesh(
        "fsdp2", ParallelismSizes(tp_size=8, pp_size=8, cp_size=2, ep_size=64, dp_replicate_size=4), world_size=131072
    )
    assert plan.layout("dp_shard_cp") == AxisLayout((512,), (8,))
    assert plan.group("tp", 131071) == list(range(131064, 131072))
    assert len(plan.group("dp", 0)) == 1024
    assert plan.layout("ep").size == 64 and plan.layout("ep_shard").size == 256


def test_mesh_ranks_is_the_rank_tensor() -> None:
    plan = plan_mesh("megatron_fsdp", ParallelismSizes(tp_size=2), ranks=[7, 6, 5, 4])
    assert plan.mesh_ranks() == [[[7, 6]], [[5, 4]]]


def test_layout_algebra() -> None:
    assert AxisLayout.of((2, 4), (4, 1)) == AxisLayout((8,), (1,))
    assert AxisLayout.of((1, 3, 1), (9, 3, 1)) == AxisLayout((3,), (3,))
    assert AxisLayout.of((2, 3), (12, 1)).complement(24) == AxisLayout((4,), (3,))
    assert AxisLayout.of((), ()).offsets() == [0]
    with pytest.raises(ValueError):
        AxisLayout.of((2,), (1, 2))


WIRE_CASES = [
    ("fsdp2", {"tp_size": 8, "pp_size": 4, "ep_size": 8}, {"world_size": 131072}, ClusterShape(gpus_per_node=8)),
    ("fsdp2", {"cp_size": 4, "tp_size": 2}, {"world_size": 64}, ClusterShape(gpus_per_node=6, nvlink_domain=12)),
    ("fsdp2", {"tp_size": 16}, {"world_size": 64}, ClusterShape(gpus_per_node=8)),  # warnings
    ("fsdp2", {"tp_size": 7}, {"world_size": 96}, None),  # invalid: problems and suggestions
    ("megatron_fsdp", {"cp_size": 2}, {"ranks": [9, 3, 5, 7]}, ClusterShape(gpus_per_node=2)),
    ("ddp", {}, {"world_size": 12}, ClusterShape(gpus_per_node=4)),
]


@pytest.mark.parametrize(("strategy", "sizes", "world", "cluster"), WIRE_CASES)
def test_to_json_is_the_encoded_to_dict_with_or_without_orjson(
    strategy: str, sizes: dict[str, int], world: dict[str, object], cluster: ClusterShape | None
) -> None:
    orjson = pytest.importorskip("orjson")
    from meshctx.plan import encode

    report = validate_topology(strategy, ParallelismSizes(**sizes), cluster=cluster, **world)  # type: ignore[arg-type]
    encoded = report.to_json()
    assert encoded == orjson.dumps(report.to_dict())
    if report.plan is not None:
        assert report.plan.to_json() == orjson.dumps(report.plan.to_dict())
    # json writes the same bytes where orjson is missing (the library needs nothing).
    assert json.dumps(report.to_dict(), ensure_ascii=False, separators=(",", ":")).encode() == encoded
    kept, encode._orjson = encode._orjson, None
    try:
        assert report.to_json() == encoded
    finally:
        encode._orjson = kept


def test_to_dict_hands_out_copies_of_what_to_json_encodes_from_the_kept_parts() -> None:
    sizes = ParallelismSizes(tp_size=8, ep_size=8)
    report = validate_topology("fsdp2", sizes, world_size=256, cluster=ClusterShape(gpus_per_node=8))
    encoded = report.to_json()
    data = report.to_dict()
    plan = data["plan"]
    assert isinstance(plan, dict)
    plan["layouts"]["dp"]["sizes"].append(99)
    plan["kwargs"]["parallelize"]["dp_axis_names"].append("tp")
    plan["cluster"]["spans"]["dp"]["nodes"] = -1
    plan["cluster"]["nodes"] = -1
    again = validate_topology("fsdp2", sizes, world_size=256, cluster=ClusterShape(gpus_per_node=8))
    assert report.to_json() == again.to_json() == encoded


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("world_size",), "many", "world_size must be an integer, got 'many'"),
        (("ranks",), 4, "ranks must be a list, got 4"),
        (("ranks", 1), "two", r"ranks\[1\] must be an integer, got 'two'"),
        (("sizes", "tp"), None, "sizes.tp must be an integer, got None"),
        (("sizes",), [1, 2], r"sizes must be an object, got \[1, 2\]"),
        (("device_mesh", "shape"), "2x2", "device_mesh.shape must be a list, got '2x2'"),
        (("device_mesh", "flattened", "dp"), "dp_shard", "device_mesh.flattened.dp must be a list, got 'dp_shard'"),
        (("layouts", "tp", "strides"), [1.5e400], r"layouts.tp.strides\[0\] must be an integer, got inf"),
        (("layouts", "tp"), "2:1", "layouts.tp must be an object, got '2:1'"),
        (("cluster", "gpus_per_node"), "eight", "cluster.gpus_per_node must be an integer, got 'eight'"),
        (("cp_degrees", "ring"), [2], r"cp_degrees.ring must be an integer, got \[2\]"),
    ],
)
def test_from_dict_names_the_field_it_cannot_read(path: tuple[object, ...], value: object, message: str) -> None:
    plan = plan_mesh(
        "fsdp2",
        ParallelismSizes(tp_size=2, cp_size=2),
        world_size=8,
        ranks=[7, 6, 5, 4, 3, 2, 1, 0],
        cluster=ClusterShape(gpus_per_node=8),
    )
    data = json.loads(json.dumps(plan.to_dict()))
    assert MeshPlan.from_dict(data) == plan
    inner = data
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = value
    with pytest.raises(ValueError, match=f"^{message}$"):
        MeshPlan.from_dict(data)


def test_sizes_and_problems_read_back_through_their_from_dict() -> None:
    report = validate_topology("fsdp2", ParallelismSizes(tp_size=3), world_size=8)
    assert not report.valid and report.suggestions
    for suggestion in report.suggestions:
        assert Suggestion.from_dict(json.loads(json.dumps(suggestion.to_dict()))) == suggestion
    for problem in report.problems:
        assert Problem.from_dict(json.loads(json.dumps(problem.to_dict()))) == problem
    assert ParallelismSizes.from_dict({"tp_size": "4", "dp_size": None}) == ParallelismSizes(tp_size=4)
    with pytest.raises(ValueError, match=r"unknown size fields \['tp'\]"):
        ParallelismSizes.from_dict({"tp": 2})
    with pytest.raises(ValueError, match="tp_size may not be None"):
        ParallelismSizes.from_dict({"tp_size": None})
