"""``MeshContext``: the live meshes of a job, with NeMo Automodel's interface.

Size properties are read from the attached meshes once and cached, because slicing a mesh on every access
costs hundreds of microseconds at scale; assigning a new ``device_mesh`` or ``moe_mesh``, or flattening a new
axis onto the mesh, drops the cache. A size no later flattening can change (the axis is a dimension of its mesh,
already flattened onto the root, or the mesh keeps no flatten mapping: torch never removes or replaces a
flattened axis) is kept in the instance's ``__dict__`` under the property's own name, so reading it again is a
plain attribute read (``_SizeProperty``). Meshes may be torch's or stand-ins NeMo's helpers accept (objects with
``mesh_dim_names`` and ``mesh[axis].size()``). ``build`` takes NeMo's strategy configs as well as meshctx's and
plans first, so a bad topology fails with every problem before any process group exists (with NeMo's exception
type and message first, see ``nemo_rules``), then realizes the plan and checks the live meshes against it.
The policy fields (``strategy_config`` … ``cp_ulysses_degree``) are carried as NeMo 0.7.0 carries them.

Rank subsets: ``world_size`` is the subset's size (NeMo's meaning). A rank outside ``ranks`` takes part in
creating every group (torch requires it) and gets the subset's meshes without groups of its own, as NeMo hands
them out (``is_member`` False); ``built_from`` holds the plan.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar, overload

from ..errors import require
from ..plan import MeshPlan
from ..plan.axes import VALID_AXIS_NAMES, MeshAxisName
from ..plan.sizes import ParallelismSizes
from . import mesh_axes

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
    #: The size properties a new flattened axis could still change (their axis is on neither mesh nor flattened).
    unsettled: frozenset[str]
    #: The root mesh's flatten mapping and its length when read: a new flattened axis makes the cache stale.
    flattened: dict[str, Any] | None
    flattened_count: int


T = TypeVar("T")


class _SizeProperty(Generic[T]):
    """A read-only size property of ``MeshContext`` (NeMo's are properties), read from the context's cached
    ``_Sizes``. A value that no later flattening can change is then kept in the instance's ``__dict__`` under the
    property's name; this descriptor has no ``__set__``, so that value shadows it and later reads cost a plain
    attribute read. ``MeshContext.__setattr__`` refuses assignments and drops the kept values with the meshes."""

    def __init__(self, read: Callable[[_Sizes], T]) -> None:
        self._read = read
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, ctx: None, owner: type) -> _SizeProperty[T]: ...
    @overload
    def __get__(self, ctx: MeshContext, owner: type) -> T: ...
    def __get__(self, ctx: MeshContext | None, owner: type) -> _SizeProperty[T] | T:
        if ctx is None:
            return self
        sizes = ctx._current_sizes()
        value = self._read(sizes)
        if self.name not in sizes.unsettled:
            vars(ctx)[self.name] = value
        return value


def _flatten_mapping(mesh: Any) -> dict[str, Any] | None:
    if mesh is None:
        return None
    mapping = mesh_axes._root_flatten_mapping(mesh)
    return mapping if isinstance(mapping, dict) else None


def _dp_axis_names_of(device_mesh: Any) -> tuple[MeshAxisName, ...]:
    """NeMo's rule: span the replicas whenever ``dp_replicate`` is a mesh dimension and ``dp_shard_cp`` exists
    (a dimension or flattened onto the root). Read from names alone, so any mesh that names its axes will do."""
    if device_mesh is not None and A.DP_REPLICATE in (device_mesh.mesh_dim_names or ()):
        flattened = mesh_axes._root_flatten_mapping(device_mesh)
        if A.DP_SHARD_CP in device_mesh.mesh_dim_names or (flattened is not None and A.DP_SHARD_CP in flattened):
            return (A.DP_REPLICATE, A.DP_SHARD_CP)
    return (A.DP_SHARD_CP,)


def _axis_kwargs(device_mesh: Any, moe_mesh: Any) -> dict[str, object]:
    """NeMo's ``parallelize_axis_kwargs``: axis names only, no size is read."""
    optional = mesh_axes._optional_axis
    return {
        "dp_axis_names": _dp_axis_names_of(device_mesh),
        "cp_axis_name": optional(device_mesh, A.CP),
        "tp_axis_name": optional(device_mesh, A.TP),
        "ep_axis_name": optional(moe_mesh, A.EP),
        "ep_shard_axis_names": (A.EP_SHARD,) if optional(moe_mesh, A.EP_SHARD) else None,
    }


def _read_sizes(device_mesh: Any, moe_mesh: Any) -> _Sizes:
    size = mesh_axes._get_axis_size
    mapping = _flatten_mapping(device_mesh)

    def unsettled_names(mesh: Any, flattened: dict[str, Any] | None, axes: tuple[MeshAxisName, ...]) -> list[str]:
        """The size properties of ``axes`` still unsettled: neither a dimension of ``mesh`` nor flattened yet."""
        if mesh is None or flattened is None:
            return []
        names = mesh.mesh_dim_names or ()
        return [f"{axis.value}_size" for axis in axes if axis not in names and axis not in flattened]

    device_axes = (A.TP, A.PP, A.CP, A.DP, A.DP_REPLICATE, A.DP_SHARD)
    unsettled = unsettled_names(device_mesh, mapping, device_axes) + unsettled_names(
        moe_mesh, _flatten_mapping(moe_mesh), (A.EP,)
    )
    if "pp_size" in unsettled:
        unsettled.append("pp_enabled")
    return _Sizes(
        tp=size(device_mesh, A.TP) or 1,
        pp=size(device_mesh, A.PP) or 1,
        cp=size(device_mesh, A.CP) or 1,
        ep=size(moe_mesh, A.EP) or 1,
        dp=size(device_mesh, A.DP, None),
        dp_replicate=size(device_mesh, A.DP_REPLICATE, None),
        dp_shard=size(device_mesh, A.DP_SHARD, 1) or 1,
        unsettled=frozenset(unsettled),
        flattened=mapping,
        flattened_count=len(mapping) if mapping is not None else 0,
    )


def _check_axis_names(**meshes: Any) -> None:
    for label, mesh in meshes.items():
        message = mesh_axes._unknown_axis_message(label, mesh)
        if message is not None:
            raise ValueError(message)


@dataclass
class MeshContext:
    """The device mesh, the MoE mesh and the model-local group of one rank, with NeMo 0.7.0's policy fields.

    The fields, their order, ``repr`` and equality are NeMo's; ``built_from`` and ``is_member`` (keyword-only,
    kept by ``dataclasses.replace``) are meshctx's additions.
    """

    device_mesh: DeviceMesh | None = field(default=None, repr=False)
    moe_mesh: DeviceMesh | None = field(default=None, repr=False)
    process_group: ProcessGroup | None = field(default=None, repr=False)
    strategy_config: Any = None
    moe_parallel_config: Any = None
    activation_checkpointing: bool | str = False
    reapply_trainability: Callable[[Any], None] | None = field(default=None, repr=False)
    cp_ring_degree: int = 1
    cp_ulysses_degree: int | None = None
    built_from: MeshPlan | None = field(default=None, kw_only=True, repr=False, compare=False)
    is_member: bool = field(default=True, kw_only=True, repr=False, compare=False)
    _sizes: _Sizes | None = field(default=None, init=False, repr=False, compare=False)
    _axis_meshes: dict[str, DeviceMesh] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_axis_names(device_mesh=self.device_mesh, moe_mesh=self.moe_mesh)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SIZE_PROPERTIES:
            raise AttributeError(f"property {name!r} of {type(self).__name__!r} object has no setter")
        if name in _MESH_FIELDS and "_axis_meshes" in self.__dict__:  # a reassignment after __init__
            _check_axis_names(**{name: value})
            object.__setattr__(self, "_sizes", None)
            for kept in _SIZE_PROPERTIES:
                self.__dict__.pop(kept, None)
            self._axis_meshes.clear()
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_meshes(
        cls,
        device_mesh: DeviceMesh | None,
        moe_mesh: DeviceMesh | None = None,
        *,
        strategy_config: Any = None,
        moe_parallel_config: Any = None,
        activation_checkpointing: bool | str = False,
        reapply_trainability: Callable[[Any], None] | None = None,
        cp_ring_degree: int = 1,
        cp_ulysses_degree: int | None = None,
    ) -> MeshContext:
        return cls(
            device_mesh=device_mesh,
            moe_mesh=moe_mesh,
            strategy_config=strategy_config,
            moe_parallel_config=moe_parallel_config,
            activation_checkpointing=activation_checkpointing,
            reapply_trainability=reapply_trainability,
            cp_ring_degree=cp_ring_degree,
            cp_ulysses_degree=cp_ulysses_degree,
        )

    @classmethod
    def build(
        cls,
        strategy_config: Any,
        parallelism_sizes: Any = None,
        *,
        moe_parallel_config: Any = None,
        activation_checkpointing: bool | str = False,
        reapply_trainability: Callable[[Any], None] | None = None,
        cp_ring_degree: int = 1,
        cp_ulysses_degree: int | None = None,
        world_size: int | None = None,
        timeout_minutes: float | None = None,
        ranks: Sequence[int] | None = None,
        device_type: str | None = None,
    ) -> MeshContext:
        """Plan, then create the meshes on every rank of the job (NeMo's signature; ``strategy_config`` is a
        meshctx or NeMo ``FSDP2Config``/``MegatronFSDPConfig``/``DDPConfig``, ``parallelism_sizes`` either
        package's ``ParallelismSizes``). Raises ``nemo_rules.MeshBuildError`` (a ``TopologyError``, NeMo's
        exception type and message first) before any group exists when the request is refused, and
        ``RuntimeError`` if torch built something else. DDP needs no process group, as in NeMo.

        Args:
            strategy_config: the strategy's config object (meshctx's or NeMo's), never a string.
            parallelism_sizes: the sizes (dp inferred when ``dp_size`` is None); default all 1.
            moe_parallel_config, activation_checkpointing, reapply_trainability: NeMo's policy fields, carried.
            cp_ring_degree, cp_ulysses_degree: NeMo's split of cp.
            world_size: the ranks the meshes span (default: the job's); ranks: a subset world instead.
            timeout_minutes: the process groups' timeout; device_type: ``cuda`` or ``cpu`` (default: found).

        Returns:
            A ``MeshContext`` holding the live device mesh (and MoE mesh), built as planned.
        """
        require("torch", "torch", "MeshContext.build")
        import torch.distributed as dist

        from ..plan import validate_topology
        from ..plan.problems import Code, Problem
        from .nemo_rules import nemo_failure, refusal, strategy_of
        from .realize import realize

        sizes = parallelism_sizes if parallelism_sizes is not None else ParallelismSizes()
        if not isinstance(sizes, ParallelismSizes):  # NeMo's own ParallelismSizes, or any object with the fields
            sizes = ParallelismSizes(**{f.name: getattr(sizes, f.name) for f in fields(ParallelismSizes)})
        initialized = dist.is_initialized()
        job_size = dist.get_world_size() if initialized else None
        # NeMo's world: the argument, else the job's (WORLD_SIZE, else 1, before init_process_group).
        nemo_world = world_size if world_size is not None else job_size or int(os.environ.get("WORLD_SIZE", "1"))
        strategy = strategy_of(strategy_config)
        nemo = nemo_failure(strategy, strategy_config, sizes, world_size=nemo_world, ranks=ranks, job_size=job_size)
        if strategy is None:
            problem = Problem.error(
                Code.UNKNOWN_STRATEGY,
                ("strategy_config",),
                f"strategy_config must be an FSDP2Config, MegatronFSDPConfig or DDPConfig (meshctx's or NeMo's), "
                f"got {strategy_config!r}.",
                "Pass a config object, e.g. FSDP2Config(); strategy names such as 'fsdp2' belong to the recipe "
                "layer (meshctx.recipe, NeMo's DistributedSetup.build).",
            )
            raise refusal([problem], nemo)
        listed = len(ranks) if ranks is not None and not isinstance(ranks, (str, bytes)) else None
        subset = listed is not None
        # NeMo reads world_size only to infer dp; with dp given, the mesh must fill the job (or the subset).
        dp_given = isinstance(sizes.dp_size, int) and sizes.dp_size > 0
        plan_world = job_size if subset or (dp_given and job_size is not None) else nemo_world
        report = validate_topology(
            strategy,
            sizes,
            world_size=plan_world,
            ranks=ranks,
            suggest=False,
            cp_ring_degree=cp_ring_degree,
            cp_ulysses_degree=cp_ulysses_degree,
        )
        problems = list(report.problems)
        if listed is not None and world_size is not None and world_size != listed and sizes.dp_size is None:
            problems.append(
                Problem.error(
                    Code.INVALID_RANKS,
                    ("world_size", "ranks"),
                    f"world_size {world_size} is the size of the mesh, but {listed} ranks are listed.",
                    f"Pass world_size={listed} (the number of ranks), or leave it unset.",
                )
            )
        if not subset and job_size is not None and plan_world != job_size:
            problems.append(
                Problem.error(
                    Code.WORLD_SIZE_MISMATCH,
                    ("world_size",),
                    f"world_size={nemo_world} but this job has {job_size} ranks, so the mesh would leave ranks out "
                    "or ask for ranks that do not exist.",
                    "Leave world_size unset, or pass ranks=[...] (with world_size=len(ranks)) to build the meshes "
                    "on a subset of the job.",
                )
            )
        if problems or report.plan is None:
            given = sizes.dp_size if dp_given else None
            mesh_size = None
            if given is not None and all(isinstance(getattr(sizes, f), int) for f in ("tp_size", "cp_size", "pp_size")):
                mesh_size = given * sizes.tp_size * sizes.cp_size * sizes.pp_size
            elif nemo_world != job_size:
                mesh_size = nemo_world
            seen = listed if listed is not None else job_size
            raise refusal(problems or list(report.problems), nemo, mesh_size=mesh_size, world=seen)
        plan = report.plan
        policy = {
            "strategy_config": strategy_config,
            "moe_parallel_config": moe_parallel_config,
            "activation_checkpointing": activation_checkpointing,
            "reapply_trainability": reapply_trainability,
            "cp_ring_degree": cp_ring_degree,
            "cp_ulysses_degree": cp_ulysses_degree,
        }
        if plan.device_mesh is None and not initialized:  # DDP before init_process_group: nothing to create
            return cls(built_from=plan, **policy)
        realized = realize(plan, device_type=device_type, timeout_minutes=timeout_minutes)
        ctx = cls(
            realized.device_mesh,
            realized.moe_mesh,
            realized.process_group,
            built_from=plan,
            is_member=realized.member,
            **policy,
        )
        if realized.member:
            ctx.verify(plan)
        return ctx

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        strategy_config: Any = None,
        timeout_minutes: float | None = None,
        device_type: str | None = None,
        **policy: Any,
    ) -> MeshContext:
        """Build the meshes a rendered launch planned, from the ``MESHCTX_*`` variables ``meshctx render`` sets
        and torch's ``WORLD_SIZE`` (``os.environ`` by default), instead of reading them by hand in every script.

        Raises ``LaunchEnvError`` listing every missing or malformed variable, and when the plan's fingerprint
        (``MESHCTX_FINGERPRINT``) is not the one of the meshes this job builds, naming both: checked before
        any group is created and again on the live meshes. ``strategy_config`` (default: the strategy's
        default config) must name ``MESHCTX_STRATEGY``'s strategy; ``policy`` takes ``build``'s NeMo policy
        fields (``moe_parallel_config``, ``activation_checkpointing``, ...).

        Args:
            environ: the variables to read (default ``os.environ``).
            strategy_config: a config of ``MESHCTX_STRATEGY``'s strategy (default: its default config).
            timeout_minutes, device_type, policy: as for ``build``.

        Returns:
            The ``MeshContext`` of the planned meshes, their fingerprint checked against the plan's.
        """
        from ..config import STRATEGY_CONFIGS
        from ..launch.spec import ENV_STRATEGY
        from ..plan.problems import TopologyError
        from .heartbeat import start_job_heartbeat
        from .job_env import LaunchEnvError, read_launch_env
        from .nemo_rules import strategy_of

        launch = read_launch_env(environ)
        config = strategy_config if strategy_config is not None else STRATEGY_CONFIGS[launch.strategy]()
        named = strategy_of(config)  # meshctx's configs and NeMo's, as build resolves them
        if named is not None and named is not launch.strategy:
            raise LaunchEnvError(
                [
                    (
                        ENV_STRATEGY,
                        f"the launch planned {launch.strategy.value} but strategy_config is a {named.value} config; "
                        f"pass a {launch.strategy.value} config or render the launch for {named.value}",
                    )
                ]
            )
        try:
            expected: MeshPlan | None = launch.plan()
        except TopologyError:
            expected = None  # an invalid topology: build reports every problem, NeMo's way
        if expected is not None:
            launch.check_fingerprint(expected.fingerprint())  # before any process group exists
        ctx = cls.build(
            config,
            launch.sizes,
            world_size=launch.world_size,
            timeout_minutes=timeout_minutes,
            device_type=device_type,
            **policy,
        )
        launch.check_fingerprint(ctx.fingerprint())
        start_job_heartbeat(ctx, environ)  # rank 0 attests and renews the job's lease (MESHCTX_JOB_ID/SERVER)
        return ctx

    def fingerprint(self) -> str:
        """The fingerprint of this rank's meshes: read back from torch where this rank holds them, else the
        plan they were built from (DDP before ``init_process_group``, a rank outside the subset)."""
        if self.is_member and any(m is not None for m in (self.device_mesh, self.moe_mesh, self.process_group)):
            return self.to_plan().fingerprint()
        if self.built_from is not None:
            return self.built_from.fingerprint()
        return self.to_plan().fingerprint()

    # ------------------------------------------------------------------ sizes (cached)
    def _current_sizes(self) -> _Sizes:
        sizes = self._sizes
        if sizes is None or (sizes.flattened is not None and len(sizes.flattened) != sizes.flattened_count):
            sizes = _read_sizes(self.device_mesh, self.moe_mesh)
            object.__setattr__(self, "_sizes", sizes)
        return sizes

    tp_size = _SizeProperty(lambda sizes: sizes.tp)
    pp_size = _SizeProperty(lambda sizes: sizes.pp)
    cp_size = _SizeProperty(lambda sizes: sizes.cp)
    ep_size = _SizeProperty(lambda sizes: sizes.ep)
    dp_size = _SizeProperty(lambda sizes: sizes.dp)
    dp_replicate_size = _SizeProperty(lambda sizes: sizes.dp_replicate)
    dp_shard_size = _SizeProperty(lambda sizes: sizes.dp_shard)
    pp_enabled = _SizeProperty(lambda sizes: sizes.pp > 1)

    # ------------------------------------------------------------------ NeMo axis kwargs
    def _dp_axis_names(self) -> tuple[MeshAxisName, ...]:
        return _dp_axis_names_of(self.device_mesh)

    def parallelize_axis_kwargs(self) -> dict[str, object]:
        return _axis_kwargs(self.device_mesh, self.moe_mesh)

    def pipeline_axis_kwargs(self) -> dict[str, object]:
        return {"pp_axis_name": A.PP} | _axis_kwargs(self.device_mesh, self.moe_mesh)

    # ------------------------------------------------------------------ axis meshes
    def axis_mesh(self, axis: str) -> DeviceMesh:
        """The 1-D mesh of ``axis`` on this rank: a device-mesh axis, a flattened one (read from the root's
        flatten mapping, not by torch's deprecated root slicing) or a MoE axis."""
        name = axis.value if isinstance(axis, MeshAxisName) else str(axis)
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
            flattened = mesh_axes._root_flatten_mapping(self.device_mesh).get(name)
            if flattened is not None:
                return flattened
        raise KeyError(f"axis {name!r} is not in this context; its axes are {list(self.axis_names())}")

    def axis_names(self) -> tuple[str, ...]:
        """Every axis this context can hand out a mesh for: device axes, flattened axes, MoE axes."""
        names: list[str] = []
        if self.device_mesh is not None:
            names += list(self.device_mesh.mesh_dim_names or ())
            names += [n for n in mesh_axes._root_flatten_mapping(self.device_mesh) if n in VALID_AXIS_NAMES]
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


#: The names of ``MeshContext``'s size properties (kept in an instance's ``__dict__`` once settled).
_SIZE_PROPERTIES: frozenset[str] = frozenset(
    name for name, value in vars(MeshContext).items() if isinstance(value, _SizeProperty)
)
