"""Where groups land on the hardware: nodes and NVLink domains spanned by each axis's groups.

Rank ``r`` sits on node ``r // gpus_per_node`` and in NVLink domain ``r // nvlink_domain``. For the
plain world (no rank subset) and layouts whose modes line up with the unit, every group spans the
same number of units and the count is a product over the modes, with no enumeration; otherwise
every group is enumerated, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from math import gcd
from typing import Protocol

from .arith import divisors, join_or
from .layout import AxisLayout
from .problems import Code, Problem
from .wire import int_of, optional_int


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterShape:
    """Rank ``r`` runs on node ``r // gpus_per_node`` (launcher order); an NVLink domain holds
    ``nvlink_domain`` consecutive ranks (e.g. 72 on a GB200 NVL72 rack), when given."""

    gpus_per_node: int
    nvlink_domain: int | None = None
    #: Processes the launcher starts on each node when fewer than ``gpus_per_node`` (``nnodes × nproc_per_node``):
    #: rank ``r`` then sits on node ``r // nproc_per_node``, so the node count given is the one the plan uses.
    nproc_per_node: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {"gpus_per_node": self.gpus_per_node, "nvlink_domain": self.nvlink_domain}
        if self.nproc_per_node is not None:
            out["nproc_per_node"] = self.nproc_per_node
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ClusterShape:
        """Read back ``to_dict()`` (or a plan's ``cluster`` report, whose other keys are derived)."""
        return cls(
            gpus_per_node=int_of(data["gpus_per_node"], "cluster.gpus_per_node"),
            nvlink_domain=optional_int(data.get("nvlink_domain"), "cluster.nvlink_domain"),
            nproc_per_node=optional_int(data.get("nproc_per_node"), "cluster.nproc_per_node"),
        )

    @property
    def ranks_per_node(self) -> int:
        """Consecutive ranks on one node (launcher order)."""
        return self.nproc_per_node if self.nproc_per_node is not None else self.gpus_per_node

    @property
    def ranks_per_nvlink_domain(self) -> int | None:
        """Consecutive ranks in one NVLink domain: whole nodes of it, each holding ``ranks_per_node`` ranks."""
        domain = self.nvlink_domain
        if not domain or self.nproc_per_node is None or domain % self.gpus_per_node:
            return domain
        return domain // self.gpus_per_node * self.nproc_per_node


class PlacedAxes(Protocol):
    """What this module reads from a ``MeshPlan``: its axis layouts over the ranks, and the cluster."""

    @property
    def world_size(self) -> int: ...
    @property
    def ranks(self) -> tuple[int, ...] | None: ...
    @property
    def layouts(self) -> Mapping[str, AxisLayout]: ...
    @property
    def cluster(self) -> ClusterShape | None: ...
    def layout(self, axis: str) -> AxisLayout: ...
    def rank_at(self, position: int) -> int: ...
    def size(self, axis: str) -> int: ...


#: Axes whose collectives are latency- or bandwidth-bound enough that leaving a node hurts.
LOCAL_AXES: tuple[str, ...] = ("tp", "ep")


def _aligned_span(layout: AxisLayout, unit: int) -> int | None:
    """Units spanned by every group when each mode lies inside a unit, across units, or splits evenly."""
    spanned = 1
    for size, stride in zip(layout.sizes, layout.strides):
        extent = size * stride
        if unit % extent == 0:
            continue
        if stride % unit == 0:
            spanned *= size
        elif unit % stride == 0 and extent % unit == 0:
            spanned *= extent // unit
        else:
            return None
    return spanned


#: Positions the unaligned count may look at before it settles for its upper bound (bounded work at any W).
SPAN_BUDGET = 1 << 14


def _offsets(layout: AxisLayout) -> Iterator[int]:
    """The offsets of ``layout`` one at a time, in its row-major order, building nothing up front."""
    modes = list(zip(layout.sizes, layout.strides))
    for index in range(layout.size):
        offset = 0
        for size, stride in reversed(modes):
            index, digit = divmod(index, size)
            offset += digit * stride
        yield offset


def _unaligned_span(layout: AxisLayout, world_size: int, unit: int) -> int:
    """Most units one group touches when the layout's modes do not line up with the unit (plain world).

    A group's count depends only on its base modulo ``unit``, so each residue is counted once, and the
    search stops at the upper bound (a group as long as its extent allows). Past ``SPAN_BUDGET`` positions
    it answers that bound: never more than one group's worth of units, and never an O(W) walk."""
    extent = sum((n - 1) * s for n, s in zip(layout.sizes, layout.strides))
    bound = min(layout.size, (unit - 1 + extent) // unit + 1, -(-world_size // unit))
    if layout.size > SPAN_BUDGET:
        return bound
    offsets = sorted(layout.offsets())
    bases = layout.complement(world_size)
    residues = unit // gcd(unit, *bases.strides)  # every base is a multiple of that gcd: no more residues exist
    best, spent, seen = 1, 0, set()
    for base in _offsets(bases):
        spent += 1
        residue = base % unit
        if residue not in seen:
            seen.add(residue)
            best = max(best, len({(residue + offset) // unit for offset in offsets}))
            spent += len(offsets)
        if best >= bound or len(seen) == residues:
            return best
        if spent >= SPAN_BUDGET:
            return bound
    return best


def units_spanned(plan: PlacedAxes, axis: str, unit: int) -> int:
    """The most units (nodes, or NVLink domains) that one group of ``axis`` touches."""
    return _span(plan, plan.layout(axis), unit)


def _span(plan: PlacedAxes, layout: AxisLayout, unit: int) -> int:
    if plan.ranks is None:
        if unit >= plan.world_size:
            return 1
        fast = _aligned_span(layout, unit)
        return fast if fast is not None else _unaligned_span(layout, plan.world_size, unit)
    # A rank subset is listed in the request, so walking it is linear in what the client sent.
    return max(len({plan.rank_at(p) // unit for p in group}) for group in layout.all_groups(plan.world_size))


def groups_crossing(plan: PlacedAxes, axis: str, unit: int) -> int | None:
    """How many groups of ``axis`` touch more than one unit (node or NVLink domain); ``None`` when counting them
    would take more than about ``SPAN_BUDGET`` steps (then only the most units one group touches is known)."""
    layout = plan.layout(axis)
    if plan.ranks is not None:  # listed in the request: walking it is linear in what the client sent
        groups = layout.all_groups(plan.world_size)
        return sum(len({plan.rank_at(p) // unit for p in group}) > 1 for group in groups)
    total = plan.world_size // layout.size
    if unit >= plan.world_size:
        return 0
    aligned = _aligned_span(layout, unit)
    if aligned is not None:  # every group spans the same number of units
        return total if aligned > 1 else 0
    offsets = layout.offsets() if layout.size <= SPAN_BUDGET else None
    if offsets is None or total > SPAN_BUDGET // 4:
        return None
    crossing_at: dict[int, bool] = {}  # a group's count depends only on its base modulo the unit
    crossing = spent = 0
    for base in _offsets(layout.complement(plan.world_size)):
        residue = base % unit
        known = crossing_at.get(residue)
        if known is None:
            spent += len(offsets)
            if spent > SPAN_BUDGET:
                return None
            known = crossing_at[residue] = len({(residue + offset) // unit for offset in offsets}) > 1
        crossing += known
    return crossing


def cluster_report(plan: PlacedAxes) -> dict[str, object]:
    """Per axis, how many nodes (and NVLink domains) one group spans."""
    cluster = plan.cluster
    assert cluster is not None
    spans: dict[str, dict[str, int]] = {}
    node, domain = cluster.ranks_per_node, cluster.ranks_per_nvlink_domain
    counted: dict[int, dict[str, int]] = {}  # axes sharing a layout (a plan's dp, dp_shard, ...) span alike
    for axis, layout in plan.layouts.items():
        entry = counted.get(id(layout))
        if entry is None:
            entry = counted[id(layout)] = {"nodes": _span(plan, layout, node)}
            if domain:
                entry["nvlink_domains"] = _span(plan, layout, domain)
        spans[axis] = entry  # shared by the axes of one layout: MeshPlan._wire copies them for to_dict()
    highest = max(plan.ranks) + 1 if plan.ranks is not None else plan.world_size
    out: dict[str, object] = {"gpus_per_node": cluster.gpus_per_node, "nvlink_domain": cluster.nvlink_domain}
    if cluster.nproc_per_node is not None:
        out["nproc_per_node"] = cluster.nproc_per_node
    return out | {"nodes": -(-highest // cluster.ranks_per_node), "spans": spans}


def report_spans(report: Mapping[str, object]) -> Mapping[str, Mapping[str, int]]:
    """The ``spans`` of a ``cluster_report``: per axis, how many nodes (and NVLink domains) one group spans."""
    spans = report["spans"]
    assert isinstance(spans, dict)
    return spans


def cluster_warnings(plan: PlacedAxes, report: Mapping[str, object] | None = None) -> list[Problem]:
    """Warn when a TP group or an EP group leaves its node (or NVLink domain, when one is given). ``report``, the
    plan's ``cluster_report`` when the caller has it, is read instead of counting those spans again."""
    cluster = plan.cluster
    if cluster is None:
        return []
    spans = report_spans(report) if report is not None else None
    domain = cluster.ranks_per_nvlink_domain
    if domain:
        unit, code, what, counted = domain, Code.AXIS_SPANS_NVLINK_DOMAIN, "NVLink domains", "nvlink_domains"
        unit_field = "cluster.nvlink_domain"
    else:
        unit, code, what, counted = cluster.ranks_per_node, Code.AXIS_SPANS_NODES, "nodes", "nodes"
        unit_field = "nproc_per_node" if cluster.nproc_per_node is not None else "cluster.gpus_per_node"
    warnings = []
    for axis in LOCAL_AXES:
        if axis not in plan.layouts:
            continue
        spanned = spans[axis][counted] if spans is not None else units_spanned(plan, axis, unit)
        if spanned <= 1:
            continue
        size = plan.size(axis)
        inside = join_or([d for d in divisors(unit) if d <= size] or [1])
        total = plan.world_size // size
        crossing = groups_crossing(plan, axis, unit)
        if crossing == total:
            which = f"Each {axis} group of {size} ranks spans {spanned} {what} of {unit} ranks, so its"
        elif crossing is not None:
            which = (
                f"{crossing} of the {total} {axis} groups of {size} ranks span {'up to ' if spanned > 2 else ''}"
                f"{spanned} {what} of {unit} ranks, so their"
            )
        else:
            which = f"The {axis} groups of {size} ranks span up to {spanned} {what} of {unit} ranks, so their"
        warnings.append(
            Problem.warning(
                code,
                (f"{axis}_size", unit_field),
                f"{which} collectives leave NVLink.",
                f"Keep {axis}_size a divisor of {unit} ({inside}) so each {axis} group stays inside one "
                f"{what[:-1]}; move the remaining factor to dp or pp.",
            )
        )
    return warnings
