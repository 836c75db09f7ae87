"""``MeshSpec`` and the pure functions that lay a resolved topology out as meshes and axis layouts.

Nothing here is memoized: ``memo`` keeps what is worth keeping (the mesh recipes, every laid-out topology, the
axis kwargs), so this module stays a set of plain functions of their arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

from .axes import MeshAxisName
from .frozen import FrozenDict
from .layout import AxisLayout
from .sizes import ResolvedSizes
from .strategies import MOE_AXES, RULES, Strategy
from .wire import int_list, mapping_of, str_list

A = MeshAxisName

#: A mesh's axis names and flattened axes as plain strings: ``((axis, ...), ((flattened, (source, ...)), ...))``.
MeshNames = tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]


def mesh_names(axes: tuple[MeshAxisName, ...], flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]]) -> MeshNames:
    """A mesh's axis names and flattened axes as plain strings (what ``to_dict`` and the kwargs read)."""
    return tuple(a.value for a in axes), tuple((k.value, tuple(a.value for a in v)) for k, v in flattened.items())


def mesh_dict(names: MeshNames, shape: tuple[int, ...], *, with_flattened: bool) -> dict[str, object]:
    """The wire form of a mesh (``MeshSpec.to_dict``) from its names and shape."""
    axes, flattened = names
    out: dict[str, object] = {"axes": list(axes), "shape": list(shape)}
    if with_flattened:
        out["flattened"] = {name: list(sources) for name, sources in flattened}
    return out


@dataclass(frozen=True, slots=True)
class MeshSpec:
    """A named mesh: its axes (outermost first), their sizes and the axes flattened from them."""

    axes: tuple[MeshAxisName, ...]
    shape: tuple[int, ...]
    flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]] = field(default_factory=dict)

    def names(self) -> MeshNames:
        return mesh_names(self.axes, self.flattened)

    def to_dict(self, *, with_flattened: bool = True) -> dict[str, object]:
        return mesh_dict(self.names(), self.shape, with_flattened=with_flattened)

    @classmethod
    def from_dict(cls, data: Mapping[str, object], where: str = "mesh") -> MeshSpec:
        """Read back ``to_dict()``; ``where`` names the mesh in errors."""
        flattened = mapping_of(data.get("flattened") or {}, f"{where}.flattened")
        return cls(
            axes=tuple(A(a) for a in str_list(data["axes"], f"{where}.axes")),
            shape=tuple(int_list(data["shape"], f"{where}.shape")),
            flattened={A(k): tuple(A(a) for a in str_list(v, f"{where}.flattened.{k}")) for k, v in flattened.items()},
        )


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


def kwargs_wire(
    device_axes: tuple[str, ...], moe_axes: tuple[str, ...], flattened: tuple[str, ...] = ()
) -> dict[str, dict[str, object]]:
    """Both kwargs dicts (``parallelize``, ``pipeline``) as their JSON reads back: plain strings and lists."""
    parallelize = {
        key: list(value) if isinstance(value, tuple) else value  # str enums encode as their values
        for key, value in axis_kwargs(device_axes, moe_axes, flattened).items()
    }
    wire = {"parallelize": parallelize, "pipeline": {"pp_axis_name": A.PP.value, **parallelize}}
    parsed: dict[str, dict[str, object]] = json.loads(json.dumps(wire))
    return parsed


@dataclass(frozen=True, slots=True)
class MeshRecipe:
    """What a strategy's device mesh is made of, apart from its sizes: the same for every topology of that
    strategy with (or without) cp, so it is worked out once (``memo.mesh_recipe``) and each plan only does the
    arithmetic."""

    axes: tuple[MeshAxisName, ...]
    shape_of: Callable[[ResolvedSizes], tuple[int, ...]]  # the sizes of ``axes``, in order
    flattened: Mapping[MeshAxisName, tuple[MeshAxisName, ...]]
    #: Every axis of the mesh, then every flattened one: its name and the run of mesh dims it covers.
    runs: tuple[tuple[str, int, int], ...]
    names: MeshNames


def mesh_recipe(strategy: Strategy, with_cp: bool) -> MeshRecipe | None:
    """The recipe of ``strategy``'s device mesh (None: the strategy builds no mesh)."""
    rules = RULES[strategy]
    if rules.mesh_axes is None:
        return None
    axes = rules.mesh_axes
    flattened = rules.flattened_for(2 if with_cp else 1)
    runs = [(axis.value, i, i) for i, axis in enumerate(axes)]
    runs += [(name.value, axes.index(sources[0]), axes.index(sources[-1])) for name, sources in flattened.items()]
    names = mesh_names(axes, flattened)
    assert len(axes) > 1  # so attrgetter returns a tuple
    return MeshRecipe(axes, attrgetter(*names[0]), flattened, tuple(runs), names)


MOE_NAMES: MeshNames = mesh_names(MOE_AXES, {})


@dataclass(frozen=True, slots=True)
class LaidOut:
    """The meshes and every axis layout of a resolved topology; axes that select the same positions share one
    ``AxisLayout``. ``device_names``/``moe_names`` are the meshes' ``MeshSpec.names()``, worked out once per mesh
    kind (the recipe's) instead of per plan."""

    device_mesh: MeshSpec | None
    moe_mesh: MeshSpec | None
    layouts: FrozenDict[str, AxisLayout]
    device_names: MeshNames | None
    moe_names: MeshNames | None


def lay_out(strategy: Strategy, sizes: ResolvedSizes, world_size: int, recipe: MeshRecipe | None) -> LaidOut:
    """The meshes and axis layouts of a resolved topology; ``recipe`` is ``mesh_recipe(strategy, sizes.cp > 1)``."""
    layouts: dict[str, AxisLayout] = {}
    made: dict[tuple[int, int], AxisLayout] = {}
    device_mesh: MeshSpec | None = None
    moe_mesh: MeshSpec | None = None
    if recipe is not None:
        shape = recipe.shape_of(sizes)
        device_mesh = MeshSpec(recipe.axes, shape, recipe.flattened)
        strides = [1] * len(shape)
        for i in range(len(shape) - 2, -1, -1):
            strides[i] = strides[i + 1] * shape[i + 1]
        for name, first, last in recipe.runs:
            layouts[name] = _run_layout(shape, strides, first, last, made)
    else:
        layouts[A.DP.value] = _mode(world_size, 1, made)
    if RULES[strategy].moe and sizes.ep > 1:
        moe_mesh = MeshSpec(MOE_AXES, (sizes.ep_shard, sizes.ep), {})
        # Each pipeline stage's ranks, in (dp_replicate, dp_shard, cp, tp) order, reshaped to (ep_shard, ep).
        layouts[A.EP_SHARD.value] = _mode(sizes.ep_shard, sizes.ep, made)
        layouts[A.EP.value] = _mode(sizes.ep, 1, made)
    return LaidOut(
        device_mesh,
        moe_mesh,
        FrozenDict(layouts),
        recipe.names if recipe is not None else None,
        MOE_NAMES if moe_mesh is not None else None,
    )


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
