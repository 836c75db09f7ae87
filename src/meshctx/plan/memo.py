"""Every memo of the plan values, in one place: what is kept, for how long and why.

Plan values (``MeshPlan``, ``MeshSpec``, ``AxisLayout``, ``ResolvedSizes``, ...) are plain frozen dataclasses
with slots: nothing is ever cached on an instance. What is worth keeping is kept here instead:

- ``mesh_recipe(strategy, with_cp)``: what a strategy's device mesh is made of apart from its sizes (axes,
  flattened axes, their names). Four exist; all are kept.
- ``topology(strategy, sizes, world_size)``: a resolved topology laid out (meshes and axis layouts) with what
  it determines by itself (``Topology``: its fingerprint, its layouts' wire dicts, its cluster report on up to
  ``CLUSTERS_KEPT`` clusters), each filled in the first time a plan of it is asked. The service sees the same
  few topologies over and over; the ``TOPOLOGIES_KEPT`` used last are kept. A plan reads the record it was built
  from (``MeshPlan._laid_out``): the one whose layouts and meshes its own *are* (identity), so a plan read back
  or changed with ``dataclasses.replace`` is never taken for one it only resembles.
- ``kwargs_wire(...)``: NeMo's axis kwargs of an axis set as JSON reads them back; a handful of sets exist.
- ``position_in(ranks, rank)``: where a rank sits in a rank subset. The rank -> position map of the last subset
  asked about more than once is kept, found by identity (hashing a 131072-rank tuple would cost as much as
  building the map); a subset asked about once is scanned and nothing of it is kept, so a request's subset does
  not outlive its request.

The one other memo of the planner is ``arith.factorize`` (numbers -> prime factors), kept beside that function
because every module, this one included, sits above ``arith``. ``clear()`` forgets the topologies and rank
subsets (the cold runs of ``bench/bench_plan.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from threading import Lock
from typing import TYPE_CHECKING

from . import meshes
from .frozen import FrozenDict
from .layout import AxisLayout
from .meshes import MeshNames, MeshSpec
from .sizes import ResolvedSizes
from .strategies import Strategy

if TYPE_CHECKING:
    from .cluster import ClusterShape

TOPOLOGIES_KEPT = 256
CLUSTERS_KEPT = 2

mesh_recipe = cache(meshes.mesh_recipe)
kwargs_wire = lru_cache(maxsize=64)(meshes.kwargs_wire)


@dataclass(eq=False)
class Topology:
    """A laid-out topology and what it determines by itself, filled in as plans of it are asked (a memo
    record, not a value: the fields below ``moe_names`` change)."""

    device_mesh: MeshSpec | None
    moe_mesh: MeshSpec | None
    layouts: FrozenDict[str, AxisLayout]
    device_names: MeshNames | None
    moe_names: MeshNames | None
    fingerprint: str | None = None
    #: ``AxisLayout.to_dict()`` of every axis: only for encoders, which read them and change nothing.
    layout_dicts: dict[str, dict[str, object]] | None = None
    cluster_reports: dict[ClusterShape, dict[str, object]] = field(default_factory=dict)

    def cluster_report(self, cluster: ClusterShape, report: Callable[[], dict[str, object]]) -> dict[str, object]:
        """The report on ``cluster`` (made by ``report`` the first time; not to be changed by the caller)."""
        kept = self.cluster_reports.get(cluster)
        if kept is None:
            if len(self.cluster_reports) >= CLUSTERS_KEPT:
                self.cluster_reports.clear()
            kept = self.cluster_reports[cluster] = report()
        return kept


_TopologyKey = tuple[Strategy, ResolvedSizes, int]
_TOPOLOGIES: dict[_TopologyKey, Topology] = {}  # in the order of last use
_TOPOLOGIES_LOCK = Lock()


def topology(strategy: Strategy, sizes: ResolvedSizes, world_size: int) -> Topology:
    """The record of a resolved topology, laid out the first time (``meshes.lay_out``)."""
    key = (strategy, sizes, world_size)
    with _TOPOLOGIES_LOCK:
        record = _TOPOLOGIES.pop(key, None)
        if record is None:
            laid = meshes.lay_out(strategy, sizes, world_size, mesh_recipe(strategy, sizes.cp > 1))
            record = Topology(laid.device_mesh, laid.moe_mesh, laid.layouts, laid.device_names, laid.moe_names)
            while len(_TOPOLOGIES) >= TOPOLOGIES_KEPT:
                del _TOPOLOGIES[next(iter(_TOPOLOGIES))]
        _TOPOLOGIES[key] = record
    return record


def kept(strategy: Strategy, sizes: ResolvedSizes, world_size: int) -> Topology | None:
    """The record of a topology if it is kept (nothing is laid out); ``MeshPlan`` takes it for its own only if
    its layouts and meshes are the record's (identity)."""
    return _TOPOLOGIES.get((strategy, sizes, world_size))


_SEEN: list[tuple[int, int]] = []  # (id, length) of the last subset looked up once: no reference kept
_KEPT: list[tuple[tuple[int, ...], dict[int, int]]] = []  # the last subset looked up again, and its map


def position_in(ranks: tuple[int, ...], rank: int) -> int | None:
    """Where ``rank`` sits in the rank subset ``ranks`` (None: it is not one of them). The first lookup in a
    subset scans it and keeps nothing of it (the service asks once per plan); from the second on, a map is built
    and kept for the last such subset (a caller going through many ranks of one plan)."""
    kept = _KEPT[0] if _KEPT else None
    if kept is not None and kept[0] is ranks:
        return kept[1].get(rank)
    mark = (id(ranks), len(ranks))
    if _SEEN and _SEEN[0] == mark:  # very likely the same tuple again; the map is built from ``ranks`` anyway
        table = {r: p for p, r in enumerate(ranks)}
        _KEPT[:] = [(ranks, table)]
        return table.get(rank)
    _SEEN[:] = [mark]
    try:
        return ranks.index(rank)
    except ValueError:
        return None


def clear() -> None:
    """Forget every topology and rank subset (what grows with the requests); the mesh recipes and the kwargs
    sets, a fixed handful, stay."""
    with _TOPOLOGIES_LOCK:
        _TOPOLOGIES.clear()
    _SEEN.clear()
    _KEPT.clear()
