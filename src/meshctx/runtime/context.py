"""``MeshContext``: the live meshes of a job, with NeMo Automodel's interface.

Size properties are read from the attached meshes once and cached (a mesh is immutable once built;
assigning a new ``device_mesh`` or ``moe_mesh`` drops the cache), because slicing a mesh on every access
costs hundreds of microseconds at scale. ``build`` plans first, so a bad topology fails with every problem
before any process group exists, then realizes the plan and checks the live meshes against it.

Rank subsets: a rank outside ``ranks`` takes part in creating every group (torch requires it) and gets a
context without meshes (``device_mesh is None``, ``is_member`` False); ``built_from`` still holds the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ..plan import MeshPlan, plan_mesh
from ..plan.axes import VALID_AXIS_NAMES, MeshAxisName
from ..plan.mesh_plan import axis_kwargs
from ..plan.sizes import ParallelismSizes

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup
    from torch.distributed.device_mesh import DeviceMesh

    from ..client import MeshctxClient

A = MeshAxisName
_MESH_FIELDS = ("device_mesh", "moe_mesh")


class _Sizes(NamedTuple):
    tp: int
    pp: int
    cp: int
    ep: int
    dp: int | None
    dp_replicate: int | None
    dp_shard: int
    device_axes: tuple[str, ...]
    moe_axes: tuple[str, ...]


def _axis_size(mesh: DeviceMesh | None, axis: str, default: int | None) -> int | None:
    """NeMo's rule: a real axis of ``mesh``, else a flattened axis of its root mesh, else ``default``."""
    if mesh is None:
        return default
    names = mesh.mesh_dim_names or ()
    if axis in names:
        return int(mesh.size(names.index(axis)))
    flattened = mesh._get_root_mesh()._flatten_mapping.get(axis)
    return int(flattened.size()) if flattened is not None else default


def _read_sizes(device_mesh: DeviceMesh | None, moe_mesh: DeviceMesh | None) -> _Sizes:
    def size(axis: MeshAxisName) -> int:
        return _axis_size(device_mesh, axis.value, 1) or 1

    return _Sizes(
        tp=size(A.TP),
        pp=size(A.PP),
        cp=size(A.CP),
        ep=_axis_size(moe_mesh, A.EP.value, 1) or 1,
        dp=_axis_size(device_mesh, A.DP.value, None),
        dp_replicate=_axis_size(device_mesh, A.DP_REPLICATE.value, None),
        dp_shard=size(A.DP_SHARD),
        device_axes=tuple(device_mesh.mesh_dim_names or ()) if device_mesh is not None else (),
        moe_axes=tuple(moe_mesh.mesh_dim_names or ()) if moe_mesh is not None else (),
    )


def _bad_axis_names(**meshes: DeviceMesh | None) -> list[str]:
    return [
        f"{field_name} has {name!r}"
        for field_name, mesh in meshes.items()
        if mesh is not None
        for name in mesh.mesh_dim_names or ()
        if name not in VALID_AXIS_NAMES
    ]


def _check_axis_names(**meshes: DeviceMesh | None) -> None:
    bad = _bad_axis_names(**meshes)
    if bad:
        allowed = ", ".join(sorted(VALID_AXIS_NAMES))
        raise ValueError(f"unknown mesh axis names: {'; '.join(bad)}. Allowed axis names: {allowed}")


@dataclass
class MeshContext:
    """The device mesh, the MoE mesh and the data-parallel group of one rank."""

    device_mesh: DeviceMesh | None = None
    moe_mesh: DeviceMesh | None = None
    process_group: ProcessGroup | None = None
    built_from: MeshPlan | None = field(default=None, init=False, repr=False, compare=False)
    is_member: bool = field(default=True, init=False, repr=False, compare=False)
    _sizes: _Sizes | None = field(default=None, init=False, repr=False, compare=False)
    _axis_meshes: dict[str, DeviceMesh] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_axis_names(device_mesh=self.device_mesh, moe_mesh=self.moe_mesh)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _MESH_FIELDS and "_axis_meshes" in self.__dict__:  # a reassignment after __init__
            _check_axis_names(**{name: value})
            object.__setattr__(self, "_sizes", None)
            self._axis_meshes.clear()
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_meshes(cls, device_mesh: DeviceMesh | None, moe_mesh: DeviceMesh | None = None) -> MeshContext:
        return cls(device_mesh=device_mesh, moe_mesh=moe_mesh)

    @classmethod
    def build(
        cls,
        strategy_config: object,
        parallelism_sizes: ParallelismSizes | None = None,
        *,
        world_size: int | None = None,
        timeout_minutes: float | None = None,
        ranks: Sequence[int] | None = None,
        device_type: str | None = None,
    ) -> MeshContext:
        """Plan, then create the meshes on every rank of the job; raises ``TopologyError`` before any group
        exists when the topology is invalid, and ``RuntimeError`` if torch built something else."""
        import torch.distributed as dist

        job_size = dist.get_world_size() if dist.is_initialized() else None
        if world_size is None:
            if job_size is None:
                raise RuntimeError(
                    "world_size was not given and torch.distributed is not initialized: "
                    "call torch.distributed.init_process_group first or pass world_size"
                )
            world_size = job_size
        plan = plan_mesh(strategy_config, parallelism_sizes, world_size=world_size, ranks=ranks)  # type: ignore[arg-type]
        if ranks is None and job_size is not None and world_size != job_size:
            raise ValueError(
                f"world_size={world_size} but this job has {job_size} ranks: leave world_size unset, "
                f"or pass ranks=[...] to build the meshes on a subset of the job"
            )
        from .realize import realize

        realized = realize(plan, device_type=device_type, timeout_minutes=timeout_minutes)
        ctx = cls(realized.device_mesh, realized.moe_mesh, realized.process_group)
        ctx.built_from = plan
        ctx.is_member = realized.member
        if realized.member:
            ctx.verify(plan)
        return ctx

    # ------------------------------------------------------------------ sizes (cached)
    def _cached(self) -> _Sizes:
        sizes = self._sizes
        if sizes is None:
            sizes = _read_sizes(self.device_mesh, self.moe_mesh)
            object.__setattr__(self, "_sizes", sizes)
        return sizes

    @property
    def tp_size(self) -> int:
        return self._cached().tp

    @property
    def pp_size(self) -> int:
        return self._cached().pp

    @property
    def cp_size(self) -> int:
        return self._cached().cp

    @property
    def ep_size(self) -> int:
        return self._cached().ep

    @property
    def dp_size(self) -> int | None:
        return self._cached().dp

    @property
    def dp_replicate_size(self) -> int | None:
        return self._cached().dp_replicate

    @property
    def dp_shard_size(self) -> int:
        return self._cached().dp_shard

    @property
    def pp_enabled(self) -> bool:
        return self._cached().pp > 1

    # ------------------------------------------------------------------ NeMo axis kwargs
    def _axis_kwargs(self) -> dict[str, object]:
        sizes = self._cached()
        return axis_kwargs(sizes.device_axes, sizes.moe_axes)

    def _dp_axis_names(self) -> tuple[MeshAxisName, ...]:
        return self._axis_kwargs()["dp_axis_names"]  # type: ignore[return-value]

    def parallelize_axis_kwargs(self) -> dict[str, object]:
        return self._axis_kwargs()

    def pipeline_axis_kwargs(self) -> dict[str, object]:
        return {"pp_axis_name": A.PP} | self._axis_kwargs()

    # ------------------------------------------------------------------ axis meshes
    def axis_mesh(self, axis: str) -> DeviceMesh:
        """The 1-D mesh of ``axis`` on this rank: a device-mesh axis, a flattened one (read from the root's
        flatten mapping, not by torch's deprecated root slicing) or a MoE axis."""
        name = str(axis)
        cached = self._axis_meshes.get(name)
        if cached is not None:
            return cached
        mesh = self._find_axis_mesh(name)
        self._axis_meshes[name] = mesh
        return mesh

    def _find_axis_mesh(self, name: str) -> DeviceMesh:
        if not self.is_member:
            raise ValueError("this rank is outside the ranks the meshes were built for; it has no axis meshes")
        for mesh in (self.device_mesh, self.moe_mesh):
            if mesh is not None and name in (mesh.mesh_dim_names or ()):
                return mesh if mesh.ndim == 1 else mesh[name]
        if self.device_mesh is not None:
            flattened = self.device_mesh._get_root_mesh()._flatten_mapping.get(name)
            if flattened is not None:
                return flattened
        raise KeyError(f"axis {name!r} is not in this context; its axes are {list(self.axis_names())}")

    def axis_names(self) -> tuple[str, ...]:
        """Every axis this context can hand out a mesh for: device axes, flattened axes, MoE axes."""
        names: list[str] = []
        if self.device_mesh is not None:
            names += list(self.device_mesh.mesh_dim_names or ())
            root = self.device_mesh._get_root_mesh()
            names += [n for n in root._flatten_mapping if n in VALID_AXIS_NAMES]
        if self.moe_mesh is not None:
            names += list(self.moe_mesh.mesh_dim_names or ())
        return tuple(names)

    def axis_group(self, axis: str) -> ProcessGroup:
        """The process group of ``axis`` that contains this rank."""
        return self.axis_mesh(axis).get_group()

    # ------------------------------------------------------------------ proof
    def to_plan(self) -> MeshPlan:
        """The topology of the live meshes, read back from torch (not re-planned)."""
        from .readback import plan_from_meshes

        if not self.is_member:
            raise ValueError("this rank is outside the ranks the meshes were built for; see built_from for the plan")
        return plan_from_meshes(self.device_mesh, self.moe_mesh, self.process_group)

    def attest(self, job_id: str, server: str | MeshctxClient, *, token: str | None = None) -> dict[str, Any]:
        """Report this job's live topology to the meshctx registry (see ``meshctx.client.attest_context``)."""
        from ..client import attest_context

        return attest_context(self, job_id, server, token=token)

    def verify(self, plan: MeshPlan) -> None:
        """Raise ``RuntimeError`` unless the live meshes have exactly the topology of ``plan``."""
        live = self.to_plan()
        if live.fingerprint() != plan.fingerprint():
            raise RuntimeError(
                f"the live meshes do not match the plan: live {live.fingerprint()} "
                f"{live.topology_dict()} vs planned {plan.fingerprint()} {plan.topology_dict()}"
            )
