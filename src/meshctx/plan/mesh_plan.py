"""``MeshPlan``: the whole layout of a job's meshes, computed without torch.

Every axis (real, flattened, MoE) is kept as an ``AxisLayout`` over *mesh positions*; position
``p`` holds global rank ``ranks[p]`` (``p`` itself when no rank subset is given). Groups and
coordinates are derived from the layouts on demand, so a plan for 131072 ranks costs the same as
one for 8 until somebody asks for every group.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from operator import attrgetter

from .axes import MeshAxisName
from .cluster import ClusterShape, cluster_report
from .encode import dumps, dumps_canonical
from .frozen import FrozenDict
from .layout import AxisLayout
from .sizes import ResolvedSizes
from .strategies import MOE_AXES, RULES, Strategy

A = MeshAxisName

#: A rank view lists the members of a group up to this size, larger ones as a layout (docs/contract.md "Bounded work").
LISTED_GROUP_LIMIT = 4096

#: The keys of ``to_dict()`` that describe the topology itself; the fingerprint covers exactly these.
TOPOLOGY_KEYS: tuple[str, ...] = ("strategy", "world_size", "ranks", "sizes", "device_mesh", "moe_mesh", "layouts")


@dataclass(frozen=True)
class MeshSpec:
    """A named mesh: its axes (outermost first), their sizes and the axes flattened from them."""

    axes: tuple[MeshAxisName, ...]
    shape: tuple[int, ...]
    flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]] = field(default_factory=dict)

    @property
    def _names(self) -> _MeshNames:
        # Kept beside the fields by hand: functools.cached_property takes a lock on every first read (3.11).
        names = self.__dict__.get("_names_kept")
        if names is None:
            names = self.__dict__["_names_kept"] = _mesh_names(self.axes, self.flattened)
        return names

    def to_dict(self, *, with_flattened: bool = True) -> dict[str, object]:
        axes, flattened = self._names
        out: dict[str, object] = {"axes": list(axes), "shape": list(self.shape)}
        if with_flattened:
            out["flattened"] = {name: list(sources) for name, sources in flattened}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MeshSpec:
        flattened = data.get("flattened") or {}
        return cls(
            axes=tuple(A(a) for a in data["axes"]),  # type: ignore[attr-defined]
            shape=tuple(int(s) for s in data["shape"]),  # type: ignore[attr-defined]
            flattened={A(k): tuple(A(a) for a in v) for k, v in flattened.items()},  # type: ignore[attr-defined]
        )


_MeshNames = tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]


def _mesh_names(
    axes: tuple[MeshAxisName, ...], flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]]
) -> _MeshNames:
    """A mesh's axis names and flattened axes as plain strings (what ``to_dict`` and the kwargs read)."""
    return tuple(a.value for a in axes), tuple((k.value, tuple(a.value for a in v)) for k, v in flattened.items())


def axis_kwargs(
    device_axes: tuple[str, ...], moe_axes: tuple[str, ...], flattened: tuple[str, ...] = ()
) -> dict[str, object]:
    """``parallelize_fn`` axis kwargs, decided exactly as NeMo Automodel's ``MeshContext`` decides them: axis
    names from the *real* axes of the device mesh and the MoE mesh; ``dp_axis_names`` spans the replicas
    (``dp_replicate`` first) whenever ``dp_replicate`` is a real axis and ``dp_shard_cp`` exists, real or
    ``flattened``, so HSDP gradients are reduced across every replica (NeMo's rule since its HSDP fix)."""
    if A.DP_REPLICATE in device_axes and (A.DP_SHARD_CP in device_axes or A.DP_SHARD_CP in flattened):
        dp_axis_names: tuple[MeshAxisName, ...] = (A.DP_REPLICATE, A.DP_SHARD_CP)
    else:
        dp_axis_names = (A.DP_SHARD_CP,)
    return {
        "dp_axis_names": dp_axis_names,
        "cp_axis_name": A.CP if A.CP in device_axes else None,
        "tp_axis_name": A.TP if A.TP in device_axes else None,
        "ep_axis_name": A.EP if A.EP in moe_axes else None,
        "ep_shard_axis_names": (A.EP_SHARD,) if A.EP_SHARD in moe_axes else None,
    }


@lru_cache(maxsize=64)
def _kwargs_json(device_axes: tuple[str, ...], moe_axes: tuple[str, ...], flattened: tuple[str, ...] = ()) -> str:
    """The JSON form of both kwargs dicts; cached, since only a handful of axis sets exist."""
    parallelize = {
        key: list(value) if isinstance(value, tuple) else value  # str enums encode as their values
        for key, value in axis_kwargs(device_axes, moe_axes, flattened).items()
    }
    return json.dumps({"parallelize": parallelize, "pipeline": {"pp_axis_name": A.PP.value, **parallelize}})


@lru_cache(maxsize=64)
def _kwargs_wire(
    device_axes: tuple[str, ...], moe_axes: tuple[str, ...], flattened: tuple[str, ...] = ()
) -> dict[str, dict[str, object]]:
    """``_kwargs_json`` read back once per axis set; ``to_dict`` hands out copies of it (its lists included)."""
    parsed: dict[str, dict[str, object]] = json.loads(_kwargs_json(device_axes, moe_axes, flattened))
    return parsed


@dataclass(frozen=True)
class _MeshRecipe:
    """What a strategy's device mesh is made of, apart from its sizes: the same for every topology of that
    strategy with (or without) cp, so it is worked out once and each plan only does the arithmetic."""

    axes: tuple[MeshAxisName, ...]
    shape_of: Callable[[ResolvedSizes], tuple[int, ...]]  # the sizes of ``axes``, in order
    flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]]
    #: Every axis of the mesh, then every flattened one: its name and the run of mesh dims it covers.
    runs: tuple[tuple[str, int, int], ...]
    names: _MeshNames  # MeshSpec._names, handed to each plan's mesh


@cache  # one per strategy with a mesh and cp on or off: four in all
def _mesh_recipe(strategy: Strategy, with_cp: bool) -> _MeshRecipe | None:
    rules = RULES[strategy]
    if rules.mesh_axes is None:
        return None
    axes = rules.mesh_axes
    flattened = rules.flattened_for(2 if with_cp else 1)
    runs = [(axis.value, i, i) for i, axis in enumerate(axes)]
    runs += [(name.value, axes.index(sources[0]), axes.index(sources[-1])) for name, sources in flattened.items()]
    names = _mesh_names(axes, flattened)
    assert len(axes) > 1  # so attrgetter returns a tuple
    return _MeshRecipe(axes, attrgetter(*names[0]), flattened, tuple(runs), names)


@dataclass
class _Derived:
    """What a plain topology (no rank subset) determines by itself, kept beside its layouts in
    ``_layout_topology``'s cache, so it is worked out at most once per distinct topology: its fingerprint, and
    its cluster report on each cluster it was asked about (at most ``CLUSTERS_KEPT``)."""

    fingerprint: str | None = None
    cluster_reports: dict[ClusterShape, dict[str, object]] = field(default_factory=dict)

    CLUSTERS_KEPT = 2


@lru_cache(maxsize=256)
def _layout_topology(
    strategy: Strategy, sizes: ResolvedSizes, world_size: int
) -> tuple[MeshSpec | None, MeshSpec | None, Mapping[str, AxisLayout], _Derived]:
    """The meshes and every axis layout of a resolved topology: a pure function of its arguments, so it is
    computed once per distinct topology (the service sees the same few topologies over and over). Axes that
    select the same positions share one ``AxisLayout``."""
    layouts: dict[str, AxisLayout] = {}
    made: dict[tuple[int, int], AxisLayout] = {}
    device_mesh: MeshSpec | None = None
    moe_mesh: MeshSpec | None = None
    recipe = _mesh_recipe(strategy, sizes.cp > 1)
    if recipe is not None:
        shape = recipe.shape_of(sizes)
        device_mesh = _named_mesh(recipe.axes, shape, recipe.flattened, recipe.names)
        strides = [1] * len(shape)
        for i in range(len(shape) - 2, -1, -1):
            strides[i] = strides[i + 1] * shape[i + 1]
        for name, first, last in recipe.runs:
            layouts[name] = _run_layout(shape, strides, first, last, made)
    else:
        layouts[A.DP.value] = _mode(world_size, 1, made)
    if RULES[strategy].moe and sizes.ep > 1:
        moe_mesh = _named_mesh(MOE_AXES, (sizes.ep_shard, sizes.ep), {}, _MOE_NAMES)
        # Each pipeline stage's ranks, in (dp_replicate, dp_shard, cp, tp) order, reshaped to (ep_shard, ep).
        layouts[A.EP_SHARD.value] = _mode(sizes.ep_shard, sizes.ep, made)
        layouts[A.EP.value] = _mode(sizes.ep, 1, made)
    return device_mesh, moe_mesh, FrozenDict(layouts), _Derived()


_MOE_NAMES = _mesh_names(MOE_AXES, {})


def _named_mesh(
    axes: tuple[MeshAxisName, ...],
    shape: tuple[int, ...],
    flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]],
    names: _MeshNames,
) -> MeshSpec:
    """A ``MeshSpec`` handed its names (``MeshSpec._names``), worked out once per mesh kind instead of per plan."""
    mesh = MeshSpec(axes, shape, flattened)
    mesh.__dict__["_names_kept"] = names
    return mesh


def _run_layout(
    shape: tuple[int, ...], strides: list[int], first: int, last: int, made: dict[tuple[int, int], AxisLayout]
) -> AxisLayout:
    """The layout of the consecutive row-major dims ``first..last``: one mode (the product of their sizes, the
    stride of the innermost dim of size > 1), already normal — what ``AxisLayout.of`` would make of those dims'
    (sizes, strides), without its general normalization (the hot path)."""
    size, stride = 1, 1
    for d in range(first, last + 1):
        if shape[d] > 1:
            size, stride = size * shape[d], strides[d]
    return _mode(size, stride, made)


_NO_MODE = AxisLayout((), ())


def _mode(size: int, stride: int, made: dict[tuple[int, int], AxisLayout]) -> AxisLayout:
    """The normal layout of one mode (``AxisLayout.of((size,), (stride,))``, on the hot path); the one in
    ``made`` when another axis of the same plan already has it."""
    if size <= 1:
        return _NO_MODE
    layout = made.get((size, stride))
    if layout is None:
        layout = made[(size, stride)] = AxisLayout((size,), (stride,))
    return layout


@dataclass(frozen=True)
class MeshPlan:
    strategy: Strategy
    world_size: int
    ranks: tuple[int, ...] | None
    sizes: ResolvedSizes
    device_mesh: MeshSpec | None
    moe_mesh: MeshSpec | None
    layouts: Mapping[str, AxisLayout]
    cluster: ClusterShape | None = None
    #: ``(ring, ulysses)`` split of a cp axis > 1 (NeMo's ``cp_ring_degree``, ``cp_ulysses_degree``); it is policy
    #: for the attention runtime, not mesh topology, so it is serialized but not fingerprinted.
    cp_degrees: tuple[int, int] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        strategy: Strategy,
        sizes: ResolvedSizes,
        world_size: int,
        ranks: tuple[int, ...] | None = None,
        cluster: ClusterShape | None = None,
        cp_degrees: tuple[int, int] | None = None,
    ) -> MeshPlan:
        """Lay out a valid, resolved topology (see ``rules.check_sizes``)."""
        if ranks is not None and list(ranks) == list(range(len(ranks))):
            ranks = None  # the identity subset is the plain world: one canonical form
        device_mesh, moe_mesh, layouts, derived = _layout_topology(strategy, sizes, world_size)
        plan = cls(strategy, world_size, ranks, sizes, device_mesh, moe_mesh, layouts, cluster, cp_degrees)
        if ranks is None:  # then the topology, hence the fingerprint, is a function of these three
            plan.__dict__["_derived"] = derived
            if derived.fingerprint is not None:
                plan.__dict__["_fingerprint"] = derived.fingerprint
        return plan

    # ------------------------------------------------------------------ axes and ranks
    @property
    def axis_names(self) -> tuple[str, ...]:
        """Every axis of the plan: device-mesh axes, flattened axes, then MoE axes."""
        return tuple(self.layouts)

    def layout(self, axis: str) -> AxisLayout:
        name = axis.value if isinstance(axis, MeshAxisName) else str(axis)
        try:
            return self.layouts[name]
        except KeyError:
            raise KeyError(f"axis {name!r} is not in this plan; its axes are {list(self.layouts)}") from None

    def size(self, axis: str) -> int:
        return self.layout(axis).size

    @cached_property
    def _position_of(self) -> dict[int, int] | None:
        return None if self.ranks is None else {r: p for p, r in enumerate(self.ranks)}

    def position(self, rank: int) -> int:
        """The mesh position that holds global ``rank``."""
        if self._position_of is None:
            if not 0 <= rank < self.world_size:
                last = self.world_size - 1
                raise ValueError(f"rank {rank} is outside this mesh of {self.world_size} ranks (0..{last})")
            return rank
        try:
            return self._position_of[rank]
        except KeyError:
            raise ValueError(f"rank {rank} is not one of this mesh's ranks") from None

    def rank_at(self, position: int) -> int:
        return position if self.ranks is None else self.ranks[position]

    def group(self, axis: str, rank: int) -> list[int]:
        """Global ranks of the ``axis`` group that contains global ``rank``, in group order."""
        return [self.rank_at(p) for p in self.layout(axis).group_positions(self.position(rank))]

    def groups(self, axis: str) -> list[list[int]]:
        """Every group of ``axis``, as global ranks."""
        return [[self.rank_at(p) for p in g] for g in self.layout(axis).all_groups(self.world_size)]

    def coordinates(self, rank: int) -> dict[str, int]:
        """The index of ``rank`` inside its group, for every axis."""
        position = self.position(rank)
        return {name: layout.local_index(position) for name, layout in self.layouts.items()}

    def rank_view(self, rank: int) -> dict[str, object]:
        """``rank``'s coordinate and group on every axis, in O(number of axes): a group of more than
        ``LISTED_GROUP_LIMIT`` ranks is given in CuTe form ``{"start", "sizes", "strides"}`` (member ``i`` is
        ``start + Σ c_k·strides[k]`` for the row-major coordinates ``c`` of ``i``), smaller ones as lists.
        A rank subset's groups are always lists: its ranks are not affine in the position, and the
        subset's length is what the caller listed."""
        position = self.position(rank)
        groups: dict[str, object] = {}
        for name, layout in self.layouts.items():
            if self.ranks is None and layout.size > LISTED_GROUP_LIMIT:
                groups[name] = {
                    "start": layout.base(position),
                    "sizes": list(layout.sizes),
                    "strides": list(layout.strides),
                }
            else:
                groups[name] = [self.rank_at(p) for p in layout.group_positions(position)]
        return {"rank": rank, "coordinates": self.coordinates(rank), "groups": groups}

    def mesh_ranks(self) -> list[object]:
        """The device mesh as nested lists of global ranks (what ``DeviceMesh.mesh.tolist()`` shows)."""
        if self.device_mesh is None:
            return []
        flat: list[object] = [self.rank_at(p) for p in range(self.world_size)]
        for size in reversed(self.device_mesh.shape[1:]):
            flat = [flat[i : i + size] for i in range(0, len(flat), size)]
        return flat

    # ------------------------------------------------------------------ NeMo-compatible kwargs
    def _axis_sets(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        device_axes = self.device_mesh._names[0] if self.device_mesh else ()
        moe_axes = self.moe_mesh._names[0] if self.moe_mesh else ()
        flattened = tuple(name for name, _ in self.device_mesh._names[1]) if self.device_mesh else ()
        return device_axes, moe_axes, flattened

    def parallelize_axis_kwargs(self) -> dict[str, object]:
        return axis_kwargs(*self._axis_sets())

    def pipeline_axis_kwargs(self) -> dict[str, object]:
        return {"pp_axis_name": A.PP} | self.parallelize_axis_kwargs()

    # ------------------------------------------------------------------ serialization
    def topology_dict(self) -> dict[str, object]:
        """The canonical description of the topology (no context, no derived fields)."""
        return self._topology(fresh=True)

    def _topology(self, *, fresh: bool) -> dict[str, object]:
        # Unless ``fresh``, the layouts' dicts are the ones kept on the layouts: only for encoding at once.
        layout_dict = AxisLayout.to_dict if fresh else AxisLayout.kept_dict
        return {
            "strategy": self.strategy.value,
            "world_size": self.world_size,
            "ranks": list(self.ranks) if self.ranks is not None else None,
            "sizes": self.sizes.to_dict(),
            "device_mesh": self.device_mesh.to_dict() if self.device_mesh else None,
            "moe_mesh": self.moe_mesh.to_dict(with_flattened=False) if self.moe_mesh else None,
            "layouts": {name: layout_dict(layout) for name, layout in self.layouts.items()},
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical topology JSON: equal fingerprints mean identical meshes."""
        cached = self.__dict__.get("_fingerprint")
        return cached if cached is not None else self._remember_fingerprint(self._topology(fresh=False))

    def _canonical(self, topology: dict[str, object]) -> bytes:
        """``topology`` as ``json.dumps(sort_keys=True, separators=(",", ":"))`` writes it; a plan ``build`` made
        holds only mesh-axis names and the planner's own ints, so orjson may write it (``dumps_canonical``)."""
        return dumps_canonical(topology, fast="_derived" in self.__dict__)

    def _remember_fingerprint(self, topology: dict[str, object]) -> str:
        fingerprint = "sha256:" + hashlib.sha256(self._canonical(topology)).hexdigest()
        self.__dict__["_fingerprint"] = fingerprint  # frozen dataclass: cache beside the fields
        derived: _Derived | None = self.__dict__.get("_derived")
        if derived is not None:
            derived.fingerprint = fingerprint
        return fingerprint

    def to_dict(self, *, groups: bool = False) -> dict[str, object]:
        out = self._wire(fresh=True)
        if groups:
            out["groups"] = {name: self.groups(name) for name in self.layouts}
        return out

    def to_json(self) -> bytes:
        """``to_dict()`` as compact JSON."""
        return dumps(self._wire(fresh=False))

    def _wire(self, *, fresh: bool) -> dict[str, object]:
        """``to_dict()`` without groups. Unless ``fresh``, the parts every plan of this topology shares (layouts,
        kwargs, the cluster report) are the kept objects themselves, not copies: for an encoder, which only
        reads them (``to_json``, and ``ValidationReport.to_json`` on the service's hot path)."""
        out = self._topology(fresh=fresh)
        if "_fingerprint" not in self.__dict__:
            self._remember_fingerprint(out)
        kwargs = _kwargs_wire(*self._axis_sets())
        out["kwargs"] = (
            {
                section: {k: list(v) if isinstance(v, list) else v for k, v in part.items()}
                for section, part in kwargs.items()
            }
            if fresh
            else kwargs
        )
        out["fingerprint"] = self.fingerprint()
        if self.cluster is not None:
            report = self._cluster_report()
            out["cluster"] = (
                {**report, "spans": {axis: dict(entry) for axis, entry in report["spans"].items()}}  # type: ignore[attr-defined]
                if fresh
                else report
            )
        if self.cp_degrees is not None:
            out["cp_degrees"] = {"ring": self.cp_degrees[0], "ulysses": self.cp_degrees[1]}
        return out

    def _cluster_report(self) -> dict[str, object]:
        """The cluster report; of a plain plan, the one kept for its topology and cluster (not to be changed)."""
        assert self.cluster is not None
        derived: _Derived | None = self.__dict__.get("_derived")
        if derived is None:
            return cluster_report(self)
        # Without a rank subset, a pure function of the topology and the cluster: computed once.
        report = derived.cluster_reports.get(self.cluster)
        if report is None:
            if len(derived.cluster_reports) >= _Derived.CLUSTERS_KEPT:
                derived.cluster_reports.clear()
            report = derived.cluster_reports[self.cluster] = cluster_report(self)
        return report

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MeshPlan:
        """Read back ``to_dict()`` output; derived keys (kwargs, groups, fingerprint) are recomputed."""
        ranks = data.get("ranks")
        cluster = data.get("cluster")
        device_mesh = data.get("device_mesh")
        moe_mesh = data.get("moe_mesh")
        cp_degrees = data.get("cp_degrees")
        plan = cls(
            strategy=Strategy(str(data["strategy"])),
            world_size=int(data["world_size"]),  # type: ignore[call-overload]
            ranks=tuple(int(r) for r in ranks) if ranks is not None else None,  # type: ignore[attr-defined]
            sizes=ResolvedSizes.from_dict(data["sizes"]),  # type: ignore[arg-type]
            device_mesh=MeshSpec.from_dict(device_mesh) if device_mesh else None,  # type: ignore[arg-type]
            moe_mesh=MeshSpec.from_dict(moe_mesh) if moe_mesh else None,  # type: ignore[arg-type]
            layouts={str(k): AxisLayout.from_dict(v) for k, v in data["layouts"].items()},  # type: ignore[attr-defined]
            cluster=(
                ClusterShape(
                    gpus_per_node=int(cluster["gpus_per_node"]),  # type: ignore[index]
                    nvlink_domain=cluster.get("nvlink_domain"),  # type: ignore[attr-defined]
                    nproc_per_node=cluster.get("nproc_per_node"),  # type: ignore[attr-defined]
                )
                if cluster
                else None
            ),
            cp_degrees=(int(cp_degrees["ring"]), int(cp_degrees["ulysses"])) if cp_degrees else None,  # type: ignore[index]
        )
        claimed = data.get("fingerprint")
        if claimed is not None and claimed != plan.fingerprint():
            raise ValueError(f"plan fingerprint {claimed} does not match its content ({plan.fingerprint()})")
        return plan
