"""``meshctx.mesh`` has NeMo 0.7.0's module-level names and they behave as NeMo's, stand-in meshes included."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from torch.distributed.device_mesh import init_device_mesh

import meshctx.mesh
from meshctx import FSDP2Config, TopologyError
from tests.nemo.nemo_loader import load_nemo
from tests.nemo.nemo_worlds import outcome, snapshot
from tests.torch.torch_worlds import fake_world

NEMO = load_nemo()
FSDP2_AXES = ("pp", "dp_replicate", "dp_shard", "cp", "tp")


def nemo_defined_names() -> set[str]:
    """Names NeMo's ``mesh`` module defines itself (not the typing and helper names it imports)."""
    module = NEMO.mesh.__name__
    return {
        name
        for name, value in vars(NEMO.mesh).items()
        if not name.startswith("__") and name != "TYPE_CHECKING" and getattr(value, "__module__", module) == module
    }


def test_every_module_level_name_of_nemo_exists() -> None:
    names = nemo_defined_names()
    assert {"_get_axis_size", "_optional_axis", "_validate_mesh_axis_names", "_VALID_AXIS_NAMES"} <= names
    assert not {n for n in names if not hasattr(meshctx.mesh, n)}
    assert set(meshctx.mesh.__all__) == set(NEMO.mesh.__all__)
    assert meshctx.mesh._VALID_AXIS_NAMES == NEMO.mesh._VALID_AXIS_NAMES


def test_axis_names_print_and_compare_like_nemo() -> None:
    for ours, theirs in zip(meshctx.mesh.MeshAxisName, NEMO.mesh.MeshAxisName, strict=True):
        assert (ours.name, ours.value) == (theirs.name, theirs.value)
        assert (str(ours), f"{ours}", repr(ours)) == (str(theirs), f"{theirs}", repr(theirs))
        assert ours == theirs.value and hash(ours) == hash(theirs)


def test_empty_context_reads_like_nemo() -> None:
    ours, theirs = meshctx.mesh.MeshContext(), NEMO.mesh.MeshContext()
    assert repr(ours) == repr(theirs)
    nemo_fields = [f.name for f in dataclasses.fields(theirs)]
    assert [f.name for f in dataclasses.fields(ours)][: len(nemo_fields)] == nemo_fields
    assert snapshot(ours, NEMO.mesh_utils, 0) == snapshot(theirs, NEMO.mesh_utils, 0)
    policy = {"cp_ring_degree": 2, "cp_ulysses_degree": 4, "activation_checkpointing": "selective"}
    assert repr(meshctx.mesh.MeshContext(**policy)) == repr(NEMO.mesh.MeshContext(**policy))


class StandInMesh:
    """What NeMo's helpers accept as a mesh: ``mesh_dim_names`` and ``mesh[axis].size()``, no torch."""

    def __init__(self, dims: dict[str, int], flattened: dict[str, int] | None = None) -> None:
        self.mesh_dim_names = tuple(dims)
        self._dims = dims
        if flattened is not None:
            self._flatten_mapping = {name: StandInMesh({name: size}) for name, size in flattened.items()}

    def __getitem__(self, axis: str) -> StandInMesh:
        return StandInMesh({axis: self._dims[axis]})

    def size(self) -> int:
        size = 1
        for n in self._dims.values():
            size *= n
        return size


STAND_INS: list[tuple[dict[str, int], dict[str, int] | None, dict[str, int] | None]] = [
    ({"pp": 2, "dp_replicate": 2, "dp_shard": 4, "cp": 2, "tp": 2}, {"dp": 8, "dp_shard_cp": 8, "dp_cp": 16}, None),
    ({"dp_replicate": 2, "dp_shard_cp": 4, "tp": 2}, None, {"ep_shard": 2, "ep": 4}),
    ({"dp_replicate": 2, "dp_shard": 4}, {}, None),
    ({"dp": 4, "cp": 2, "tp": 2}, {"dp_cp": 8}, None),
    ({"tp": 8}, None, {"ep": 8}),
]


@pytest.mark.parametrize(("dims", "flattened", "moe"), STAND_INS)
def test_stand_in_meshes_read_like_nemo(
    dims: dict[str, int], flattened: dict[str, int] | None, moe: dict[str, int] | None
) -> None:
    mesh, moe_mesh = StandInMesh(dims, flattened), StandInMesh(moe) if moe else None
    ours = meshctx.mesh.MeshContext(device_mesh=mesh, moe_mesh=moe_mesh)  # type: ignore[arg-type]
    theirs = NEMO.mesh.MeshContext(device_mesh=mesh, moe_mesh=moe_mesh)
    for name in ("tp_size", "pp_size", "cp_size", "ep_size", "dp_size", "dp_replicate_size", "dp_shard_size"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert repr(ours.parallelize_axis_kwargs()) == repr(theirs.parallelize_axis_kwargs())
    assert repr(ours.pipeline_axis_kwargs()) == repr(theirs.pipeline_axis_kwargs())
    for axis in NEMO.mesh.MeshAxisName:
        for default in (1, None):
            assert meshctx.mesh._get_axis_size(mesh, axis, default) == NEMO.mesh._get_axis_size(mesh, axis, default)
        assert meshctx.mesh._optional_axis(mesh, axis) == NEMO.mesh._optional_axis(mesh, axis)


class NamesOnlyMesh:
    """The stand-in of NeMo's regression test for its HSDP+MoE fix (#3135): axis names, a root and a flatten
    mapping whose mesh has a size, and nothing else (no ``mesh[axis]``)."""

    def __init__(self, names: tuple[str, ...], flattened: dict[str, int]) -> None:
        self.mesh_dim_names = names
        self._flatten_mapping = {name: StandInMesh({name: size}) for name, size in flattened.items()}

    def _get_root_mesh(self) -> NamesOnlyMesh:
        return self


@pytest.mark.parametrize("axis", [NEMO.mesh.MeshAxisName.DP_SHARD_CP, "dp_shard_cp"])
def test_axis_kwargs_come_from_names_alone_as_in_nemos_hsdp_moe_regression_test(axis: Any) -> None:
    mesh = NamesOnlyMesh(FSDP2_AXES, {axis: 8})
    ours = meshctx.mesh.MeshContext(device_mesh=mesh)  # type: ignore[arg-type]
    theirs = NEMO.mesh.MeshContext(device_mesh=mesh)
    assert ours._dp_axis_names() == theirs._dp_axis_names() == ("dp_replicate", "dp_shard_cp")
    assert repr(ours.parallelize_axis_kwargs()) == repr(theirs.parallelize_axis_kwargs())
    assert repr(ours.pipeline_axis_kwargs()) == repr(theirs.pipeline_axis_kwargs())
    without = NamesOnlyMesh(FSDP2_AXES, {})
    assert meshctx.mesh.MeshContext(device_mesh=without)._dp_axis_names() == ("dp_shard_cp",)  # type: ignore[arg-type]


def test_unknown_axis_names_fail_with_nemos_message() -> None:
    bad = StandInMesh({"data": 2, "tp": 2})
    ours = outcome(lambda: meshctx.mesh.MeshContext(device_mesh=bad))  # type: ignore[arg-type]
    theirs = outcome(lambda: NEMO.mesh.MeshContext(device_mesh=bad))
    assert ours[0] == theirs[0] == "error" and type(ours[1]) is type(theirs[1]) is ValueError
    assert str(ours[1]).startswith(str(theirs[1]))
    holder: Any = type("Holder", (), {"device_mesh": None, "moe_mesh": bad})()
    with pytest.raises(ValueError) as err:
        meshctx.mesh._validate_mesh_axis_names(holder)
    with pytest.raises(ValueError) as nemo_err:
        NEMO.mesh._validate_mesh_axis_names(holder)
    assert str(err.value).startswith(str(nemo_err.value))


@pytest.mark.torch
def test_a_mesh_flattened_after_the_first_read_is_read_again() -> None:
    with fake_world(16, 5):
        mesh = init_device_mesh("cpu", (1, 2, 4, 2, 1), mesh_dim_names=FSDP2_AXES)
        ours = meshctx.mesh.MeshContext(device_mesh=mesh)
        assert ours.dp_size is None and ours._dp_axis_names() == ("dp_shard_cp",)
        mesh[("dp_replicate", "dp_shard")]._flatten("dp")
        mesh[("dp_shard", "cp")]._flatten("dp_shard_cp")
        assert ours.dp_size == 8
        assert ours._dp_axis_names() == ("dp_replicate", "dp_shard_cp")
        if hasattr(mesh, "_flatten_mapping"):  # torch 2.9 keeps flattened meshes where NeMo does not look
            theirs = NEMO.mesh.MeshContext(device_mesh=mesh)
            assert ours.dp_size == theirs.dp_size
            assert ours._dp_axis_names() == theirs._dp_axis_names()


def test_ddp_builds_without_a_process_group_like_nemo(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    assert not dist.is_initialized()
    for env in ("8", None):
        if env is None:
            monkeypatch.delenv("WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("WORLD_SIZE", env)
        ours = meshctx.mesh.MeshContext.build(NEMO.config.DDPConfig())
        theirs = NEMO.mesh.MeshContext.build(NEMO.config.DDPConfig())
        assert repr(ours) == repr(theirs) and ours.process_group is theirs.process_group is None
        assert ours.device_mesh is theirs.device_mesh is None
        assert ours.built_from is not None and ours.built_from.world_size == int(env or 1)


def test_strategy_names_are_refused_as_nemo_refuses_them() -> None:
    ours = outcome(lambda: meshctx.mesh.MeshContext.build("fsdp2"))  # type: ignore[arg-type]
    theirs = outcome(lambda: NEMO.mesh.MeshContext.build("fsdp2"))
    assert ours[0] == theirs[0] == "error" and isinstance(ours[1], type(theirs[1]))
    assert str(ours[1]).startswith(str(theirs[1]))
    assert isinstance(ours[1], TopologyError) and ours[1].codes == ("unknown_strategy",)
    # NeMo's own configs and meshctx's name the same strategies
    assert type(FSDP2Config()).__name__ == type(NEMO.config.FSDP2Config()).__name__
