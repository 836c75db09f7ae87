"""``MeshPlan``: the whole layout of a job's meshes, computed without torch.

Every axis (real, flattened, MoE) is kept as an ``AxisLayout`` over *mesh positions*; position
``p`` holds global rank ``ranks[p]`` (``p`` itself when no rank subset is given). Groups and
coordinates are derived from the layouts on demand, so a plan for 131072 ranks costs the same as
one for 8 until somebody asks for every group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from . import memo
from .axes import MeshAxisName
from .cluster import ClusterShape, cluster_report, report_spans
from .encode import dumps, dumps_canonical
from .layout import AxisLayout
from .meshes import MeshNames, MeshSpec, axis_kwargs, mesh_dict
from .sizes import ResolvedSizes
from .strategies import Strategy
from .wire import int_list, int_of, mapping_of

__all__ = ["LISTED_GROUP_LIMIT", "TOPOLOGY_KEYS", "MeshPlan", "MeshSpec", "axis_kwargs"]

A = MeshAxisName

#: A rank view lists the members of a group up to this size, larger ones as a layout (docs/contract.md "Bounded work").
LISTED_GROUP_LIMIT = 4096

#: The keys of ``to_dict()`` that describe the topology itself; the fingerprint covers exactly these.
TOPOLOGY_KEYS: tuple[str, ...] = ("strategy", "world_size", "ranks", "sizes", "device_mesh", "moe_mesh", "layouts")


@dataclass(frozen=True, slots=True)
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
        laid = memo.topology(strategy, sizes, world_size)
        return cls(
            strategy, world_size, ranks, sizes, laid.device_mesh, laid.moe_mesh, laid.layouts, cluster, cp_degrees
        )

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

    def position(self, rank: int) -> int:
        """The mesh position that holds global ``rank``."""
        if self.ranks is None:
            if not 0 <= rank < self.world_size:
                last = self.world_size - 1
                raise ValueError(f"rank {rank} is outside this mesh of {self.world_size} ranks (0..{last})")
            return rank
        position = memo.position_in(self.ranks, rank)
        if position is None:
            raise ValueError(f"rank {rank} is not one of this mesh's ranks")
        return position

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

    def _laid_out(self) -> memo.Topology | None:
        """The kept record this plan was built from (``MeshPlan.build``); None if it is not kept, or if this plan's
        layouts or meshes are not the record's own objects (read back, or changed with ``dataclasses.replace``)."""
        laid = memo.kept(self.strategy, self.sizes, self.world_size)
        if laid is None or laid.layouts is not self.layouts:
            return None
        return laid if laid.device_mesh is self.device_mesh and laid.moe_mesh is self.moe_mesh else None

    # ------------------------------------------------------------------ NeMo-compatible kwargs
    def _mesh_names(self, laid: memo.Topology | None) -> tuple[MeshNames | None, MeshNames | None]:
        """``names()`` of the device mesh and the MoE mesh (None where there is none): the record's, if kept."""
        if laid is not None:
            return laid.device_names, laid.moe_names
        return self.device_mesh.names() if self.device_mesh else None, self.moe_mesh.names() if self.moe_mesh else None

    def _axis_sets(self, laid: memo.Topology | None) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        device, moe = self._mesh_names(laid)
        device_axes = device[0] if device else ()
        flattened = tuple(name for name, _ in device[1]) if device else ()
        return device_axes, moe[0] if moe else (), flattened

    def parallelize_axis_kwargs(self) -> dict[str, object]:
        return axis_kwargs(*self._axis_sets(self._laid_out()))

    def pipeline_axis_kwargs(self) -> dict[str, object]:
        return {"pp_axis_name": A.PP} | self.parallelize_axis_kwargs()

    # ------------------------------------------------------------------ serialization
    def topology_dict(self) -> dict[str, object]:
        """The canonical description of the topology (no context, no derived fields)."""
        return self._topology(self._laid_out())

    def _topology(self, laid: memo.Topology | None, *, fresh: bool = True) -> dict[str, object]:
        """The topology; ``laid`` is the plan's kept record (``_laid_out``), whose mesh names it reads. Unless
        ``fresh``, the layouts' dicts are the record's own: only for encoding at once."""
        device_names, moe_names = self._mesh_names(laid)
        device = moe = None
        if self.device_mesh is not None and device_names is not None:
            device = mesh_dict(device_names, self.device_mesh.shape, with_flattened=True)
        if self.moe_mesh is not None and moe_names is not None:
            moe = mesh_dict(moe_names, self.moe_mesh.shape, with_flattened=False)
        if fresh or laid is None:
            layouts = {name: layout.to_dict() for name, layout in self.layouts.items()}
        else:
            if laid.layout_dicts is None:
                laid.layout_dicts = {name: layout.to_dict() for name, layout in self.layouts.items()}
            layouts = laid.layout_dicts
        return {
            "strategy": self.strategy.value,
            "world_size": self.world_size,
            "ranks": list(self.ranks) if self.ranks is not None else None,
            "sizes": self.sizes.to_dict(),
            "device_mesh": device,
            "moe_mesh": moe,
            "layouts": layouts,
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical topology JSON: equal fingerprints mean identical meshes."""
        laid = self._laid_out()
        return self._fingerprint(laid, None)

    def _fingerprint(self, laid: memo.Topology | None, topology: dict[str, object] | None) -> str:
        """The fingerprint; of a plan without a rank subset, the one kept for its topology. ``topology`` is
        ``self._topology(laid)`` when the caller has it."""
        plain = laid if laid is not None and self.ranks is None else None
        if plain is not None and plain.fingerprint is not None:
            return plain.fingerprint
        topology = topology if topology is not None else self._topology(laid, fresh=False)
        fingerprint = "sha256:" + hashlib.sha256(self._canonical(topology, fast=plain is not None)).hexdigest()
        if plain is not None:
            plain.fingerprint = fingerprint
        return fingerprint

    def _canonical(self, topology: dict[str, object], *, fast: bool | None = None) -> bytes:
        """``topology`` as ``json.dumps(sort_keys=True, separators=(",", ":"))`` writes it; a plan ``build`` made
        (no rank subset) holds only mesh-axis names and the planner's own ints, so orjson may write it
        (``dumps_canonical``). ``fast``: whether this plan is one, when the caller knows."""
        if fast is None:
            fast = self.ranks is None and self._laid_out() is not None
        return dumps_canonical(topology, fast=fast)

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
        laid = self._laid_out()
        out = self._topology(laid, fresh=fresh)
        out_fingerprint = self._fingerprint(laid, out)
        kwargs = memo.kwargs_wire(*self._axis_sets(laid))
        out["kwargs"] = (
            {
                section: {k: list(v) if isinstance(v, list) else v for k, v in part.items()}
                for section, part in kwargs.items()
            }
            if fresh
            else kwargs
        )
        out["fingerprint"] = out_fingerprint
        if self.cluster is not None:
            report = self._cluster_report(laid, looked_up=True)
            out["cluster"] = (
                {**report, "spans": {axis: dict(entry) for axis, entry in report_spans(report).items()}}
                if fresh
                else report
            )
        if self.cp_degrees is not None:
            out["cp_degrees"] = {"ring": self.cp_degrees[0], "ulysses": self.cp_degrees[1]}
        return out

    def _cluster_report(self, laid: memo.Topology | None = None, *, looked_up: bool = False) -> dict[str, object]:
        """The cluster report (``cluster.cluster_report``); of a plan without a rank subset, the one kept for its
        topology and cluster: not to be changed. ``laid``: the plan's ``_laid_out``, when ``looked_up``."""
        cluster = self.cluster
        assert cluster is not None
        record = laid if looked_up else self._laid_out()
        if record is None or self.ranks is not None:
            return cluster_report(self)
        return record.cluster_report(cluster, lambda: cluster_report(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MeshPlan:
        """Read back ``to_dict()`` output; derived keys (kwargs, groups, fingerprint) are recomputed."""
        ranks = data.get("ranks")
        cluster = data.get("cluster")
        device_mesh = data.get("device_mesh")
        moe_mesh = data.get("moe_mesh")
        cp_degrees = mapping_of(data.get("cp_degrees") or {}, "cp_degrees")
        plan = cls(
            strategy=Strategy(str(data["strategy"])),
            world_size=int_of(data["world_size"], "world_size"),
            ranks=tuple(int_list(ranks, "ranks")) if ranks is not None else None,
            sizes=ResolvedSizes.from_dict(mapping_of(data["sizes"], "sizes")),
            device_mesh=MeshSpec.from_dict(mapping_of(device_mesh, "device_mesh"), "device_mesh")
            if device_mesh
            else None,
            moe_mesh=MeshSpec.from_dict(mapping_of(moe_mesh, "moe_mesh"), "moe_mesh") if moe_mesh else None,
            layouts={
                str(k): AxisLayout.from_dict(mapping_of(v, f"layouts.{k}"), f"layouts.{k}")
                for k, v in mapping_of(data["layouts"], "layouts").items()
            },
            cluster=ClusterShape.from_dict(mapping_of(cluster, "cluster")) if cluster else None,
            cp_degrees=(
                (int_of(cp_degrees["ring"], "cp_degrees.ring"), int_of(cp_degrees["ulysses"], "cp_degrees.ulysses"))
                if cp_degrees
                else None
            ),
        )
        claimed = data.get("fingerprint")
        if claimed is not None and claimed != plan.fingerprint():
            raise ValueError(f"plan fingerprint {claimed} does not match its content ({plan.fingerprint()})")
        return plan
