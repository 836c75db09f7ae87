"""MeshContext behaviour on real (fake-backend) meshes: NeMo-compatible sizes, validation, caching, lookup."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from meshctx import DDPConfig, FSDP2Config, MegatronFSDPConfig, MeshContext, ParallelismSizes, plan_mesh
from meshctx.plan import axis_kwargs
from meshctx.runtime.realize import device_type_for_backend, nccl_timeout_override
from tests.torch.torch_worlds import fake_world

FSDP2 = ("pp", "dp_replicate", "dp_shard", "cp", "tp")


def nemo_style_meshes(shape: tuple[int, ...], ep: int) -> tuple[object, object]:
    """The meshes NeMo Automodel builds by hand for fsdp2 (init_device_mesh, _flatten, _unflatten; before torch
    2.10, which has no ``_unflatten``, NeMo reshapes the stage's ranks into a new mesh)."""
    mesh = init_device_mesh("cpu", shape, mesh_dim_names=FSDP2)
    mesh[("dp_replicate", "dp_shard")]._flatten("dp")
    mesh[("dp_shard", "cp")]._flatten("dp_shard_cp")
    mesh[("dp_replicate", "dp_shard", "cp")]._flatten("dp_cp")
    stage = mesh[("dp_replicate", "dp_shard", "cp", "tp")]._flatten()
    sizes = (stage.size() // ep, ep)
    if hasattr(stage, "_unflatten"):
        return mesh, stage._unflatten(0, sizes, ("ep_shard", "ep"))
    return mesh, DeviceMesh("cpu", stage.mesh.reshape(sizes), mesh_dim_names=("ep_shard", "ep"))


def test_no_mesh_defaults_like_nemo() -> None:
    ctx = MeshContext()
    assert (ctx.tp_size, ctx.pp_size, ctx.cp_size, ctx.ep_size, ctx.dp_shard_size) == (1, 1, 1, 1, 1)
    assert ctx.dp_size is None and ctx.dp_replicate_size is None and ctx.pp_enabled is False
    assert ctx.parallelize_axis_kwargs() == axis_kwargs((), ())
    assert ctx._dp_axis_names() == ("dp_shard_cp",)


@pytest.mark.torch
def test_unknown_axis_names_are_rejected_with_the_allowed_ones() -> None:
    with fake_world(8, 0):
        mesh = init_device_mesh("cpu", (2, 4), mesh_dim_names=("data", "tp"))
        with pytest.raises(ValueError, match=r"device_mesh contains unknown axis names \{'data'\}; allowed names are"):
            MeshContext(device_mesh=mesh)
        good = init_device_mesh("cpu", (2, 4), mesh_dim_names=("dp", "tp"))
        ctx = MeshContext(device_mesh=good)
        with pytest.raises(ValueError, match="moe_mesh contains unknown axis names"):
            ctx.moe_mesh = mesh


@pytest.mark.torch
def test_nemo_built_meshes_read_like_the_plan() -> None:
    sizes = ParallelismSizes(pp_size=2, dp_replicate_size=2, cp_size=2, tp_size=2, ep_size=4)
    plan = plan_mesh("fsdp2", sizes, world_size=32)
    with fake_world(32, 21):
        mesh, moe = nemo_style_meshes((2, 2, 2, 2, 2), ep=4)
        ctx = MeshContext.from_meshes(mesh, moe)
        assert (ctx.dp_size, ctx.dp_replicate_size, ctx.dp_shard_size, ctx.ep_size, ctx.pp_enabled) == (
            4,
            2,
            2,
            4,
            True,
        )
        assert ctx.to_plan().fingerprint() == plan.fingerprint()
        assert ctx.pipeline_axis_kwargs() == plan.pipeline_axis_kwargs()
        assert set(ctx.axis_names()) == set(plan.axis_names)


@pytest.mark.torch
def test_axis_mesh_reads_flattened_axes_without_deprecated_root_slicing() -> None:
    with fake_world(16, 5):
        ctx = MeshContext.build(FSDP2Config(), ParallelismSizes(dp_replicate_size=2, cp_size=2, tp_size=2))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch warns when a flattened axis is sliced from the root
            for axis in ("dp", "dp_shard_cp", "dp_cp", "tp"):
                assert ctx.axis_mesh(axis).mesh.tolist() == ctx.built_from.group(axis, 5)  # type: ignore[union-attr]
        assert ctx.axis_mesh("dp") is ctx.axis_mesh("dp")
        with pytest.raises(KeyError, match="'ep' is not in this context"):
            ctx.axis_mesh("ep")


@pytest.mark.torch
def test_reassigning_a_mesh_drops_the_cached_sizes() -> None:
    with fake_world(8, 0):
        ctx = MeshContext.build(MegatronFSDPConfig(), ParallelismSizes(tp_size=4))
        assert (ctx.tp_size, ctx.dp_size) == (4, 2)
        ctx.device_mesh = init_device_mesh("cpu", (8,), mesh_dim_names=("tp",))
        assert (ctx.tp_size, ctx.dp_size, ctx.dp_shard_size) == (8, None, 1)
        assert ctx.parallelize_axis_kwargs() == axis_kwargs(("tp",), ())


class CountingMesh:
    """A stand-in mesh (names, ``mesh[axis].size()``, a flatten mapping) that counts how often a size is read."""

    def __init__(self, dims: dict[str, int], flattened: dict[str, int]) -> None:
        self.mesh_dim_names = tuple(dims)
        self.dims = dims
        self._flatten_mapping = {name: CountingMesh({name: size}, {}) for name, size in flattened.items()}
        self.reads = 0

    def __getitem__(self, axis: str) -> CountingMesh:
        self.reads += 1
        return CountingMesh({axis: self.dims[axis]}, {})

    def size(self) -> int:
        return sum(self.dims.values()) if len(self.dims) == 1 else 0


SIZE_PROPERTIES = ("tp_size", "pp_size", "cp_size", "ep_size", "dp_size", "dp_replicate_size", "dp_shard_size")


def test_sizes_are_read_from_the_mesh_once_read_only_and_read_again_when_an_axis_is_flattened() -> None:
    mesh = CountingMesh({"dp_shard": 4, "tp": 2}, {"dp_shard_cp": 4})
    ctx = MeshContext(device_mesh=mesh)  # type: ignore[arg-type]
    first = {name: getattr(ctx, name) for name in (*SIZE_PROPERTIES, "pp_enabled")}
    assert first == {
        **dict.fromkeys(SIZE_PROPERTIES, 1),
        "tp_size": 2,
        "dp_shard_size": 4,
        "dp_size": None,
        "dp_replicate_size": None,
        "pp_enabled": False,
    }
    reads = mesh.reads
    for _ in range(3):
        assert {name: getattr(ctx, name) for name in first} == first
    assert mesh.reads == reads  # kept, not read from the mesh again
    mesh._flatten_mapping["dp"] = CountingMesh({"dp": 4}, {})  # an axis flattened after the first read
    assert ctx.dp_size == 4 and ctx.tp_size == 2 and ctx.dp_replicate_size is None
    for name in (*SIZE_PROPERTIES, "pp_enabled"):
        with pytest.raises(AttributeError, match=f"property '{name}' of 'MeshContext' object has no setter"):
            setattr(ctx, name, 3)
    ctx.device_mesh = CountingMesh({"tp": 8}, {})  # type: ignore[assignment]
    assert (ctx.tp_size, ctx.dp_size, ctx.dp_shard_size) == (8, None, 1)


@pytest.mark.torch
def test_build_reads_world_size_and_checks_the_plan_against_the_job() -> None:
    with fake_world(12, 3):
        ctx = MeshContext.build(FSDP2Config(), ParallelismSizes(tp_size=3))
        assert ctx.built_from is not None and ctx.built_from.world_size == 12
        assert ctx.dp_size == 4
        # a world size other than the job's is refused before torch sees it: no silent partial mesh
        for wrong in (8, 16):
            with pytest.raises(ValueError, match=f"world_size={wrong} but this job has 12 ranks"):
                MeshContext.build(FSDP2Config(), ParallelismSizes(tp_size=2), world_size=wrong)
        # the first 8 ranks as an explicit subset: stored like the plain world of 8, ranks 8..11 left out
        sub = MeshContext.build(FSDP2Config(), ParallelismSizes(tp_size=2), ranks=list(range(8)))
        assert sub.built_from is not None and sub.built_from.ranks is None and sub.built_from.world_size == 8
        assert sub.is_member and sub.to_plan().fingerprint() == sub.built_from.fingerprint()
        # the timeout only configures NCCL groups: a cpu mesh builds as usual; DDP over the job keeps the
        # default group as NeMo does (process_group None)
        ddp = MeshContext.build(DDPConfig(), timeout_minutes=5)
        assert ddp.process_group is None and ddp.to_plan().world_size == 12


def test_device_type_follows_the_backend_as_in_nemo() -> None:
    """NCCL means a CUDA mesh where CUDA is available; every other backend a CPU mesh (mpi, ucc, xccl: NeMo's)."""
    nccl = "cuda" if torch.cuda.is_available() else "cpu"
    assert device_type_for_backend("nccl") == device_type_for_backend("cpu:gloo,cuda:nccl") == nccl
    for backend in ("gloo", "fake", "mpi", "ucc", "MPI", "xccl", "hccl", "cpu:gloo"):
        assert device_type_for_backend(backend) == "cpu", backend
    assert nccl_timeout_override("cpu", 5) is None
