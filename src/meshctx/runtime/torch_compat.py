"""The DeviceMesh internals meshctx reads, on every torch the ``torch`` extra admits (2.9 and later).

Since torch 2.10 every mesh keeps a CuTe layout over its root's rank map (``_layout``, ``_rank_map``), the root
keeps its flattened meshes (``_flatten_mapping``), and there are ``_get_root_mesh`` and ``_unflatten``;
``realize`` builds the meshes as NeMo does there, replaying group creation on ranks outside a rank subset with
torch 2.13's layout algebra (``LAYOUTS``). torch 2.9 keeps roots and flattened meshes in
``device_mesh._mesh_resources`` and has no layouts. Before 2.13 ``realize`` takes the legacy path, and on 2.9 the
read-back derives each axis's layout from the ranks of its group, the (sizes, strides) later releases store.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch.distributed.device_mesh import DeviceMesh

from ..plan import AxisLayout


def _has_layout_api() -> bool:
    try:
        from torch.distributed._mesh_layout import _MeshLayout
    except ImportError:
        return False
    unflatten = getattr(DeviceMesh, "_unflatten", None)
    if unflatten is None or "backend_override" not in inspect.signature(unflatten).parameters:
        return False
    return hasattr(_MeshLayout, "collapse") and hasattr(_MeshLayout, "from_sizes_strides")


#: Whether this torch has the layout algebra ``realize`` replays torch 2.13's group creation with.
LAYOUTS: bool = _has_layout_api()


def replay_flatten_groups(root: Any, axes: tuple[str, ...], name: str, override: Any) -> bool:
    """On a rank outside ``root``, create the groups ``root[axes]._flatten(name)`` creates on its members, where
    this torch builds them from a layout (2.10 to 2.12: the same layout their ``_flatten`` computes, and the same
    ``_init_process_groups``). ``False`` on torch 2.9, which builds them from rank tensors."""
    init_groups = getattr(DeviceMesh, "_init_process_groups", None)
    if init_groups is None or list(inspect.signature(init_groups).parameters)[:1] != ["layout"]:
        return False
    layout = root._get_slice_mesh_layout(axes).coalesce()
    if len(layout) > 1:
        layout = layout.nest()
    DeviceMesh._init_process_groups(layout, root._rank_map, (name,), (override or (None, None),))
    return True


def root_mesh(mesh: Any) -> Any:
    """The root mesh ``mesh`` was sliced or flattened from (itself for a root)."""
    getter = getattr(mesh, "_get_root_mesh", None)
    if getter is not None:
        return getter()
    from torch.distributed.device_mesh import _mesh_resources

    return _mesh_resources.get_root_mesh(mesh)


def flatten_mapping(root: Any) -> dict[str, Any]:
    """The root's flattened meshes by name: ``root._flatten_mapping`` (torch's since 2.10; on torch 2.9 the
    attribute NeMo, and ``realize``, attach and fill), else what torch 2.9 keeps in ``_mesh_resources``."""
    mapping = getattr(root, "_flatten_mapping", None)
    if isinstance(mapping, dict):
        return mapping
    from torch.distributed import device_mesh

    resources: Any = device_mesh._mesh_resources
    mapping = resources.root_to_flatten_mapping.setdefault(root, {})  # the live table torch fills
    return mapping


def fresh_flatten_mapping(root: Any) -> dict[str, Any]:
    """The flatten mapping ``realize`` registers a new root's flattened axes in. On torch 2.9 that is a new
    ``root._flatten_mapping`` (as NeMo attaches), and torch's own table forgets what it keeps for an *equal* root
    built earlier in this process: it would hand out those meshes, whose groups may belong to a destroyed job,
    instead of creating new ones, as later releases do for every new root."""
    mapping = getattr(root, "_flatten_mapping", None)
    if isinstance(mapping, dict):
        return mapping
    from torch.distributed import device_mesh

    resources = device_mesh._mesh_resources
    resources.root_to_flatten_mapping.pop(root, None)
    resources.flatten_name_to_root_dims.pop(root, None)
    root._flatten_mapping = {}
    return root._flatten_mapping


def rank_map(root: Any) -> list[int]:
    """The global rank at each position of the root mesh, row-major."""
    ranks = getattr(root, "_rank_map", None)
    return list((ranks if ranks is not None else root.mesh.flatten()).tolist())


def layout_of_offsets(offsets: list[int]) -> AxisLayout:
    """The (sizes, strides) layout whose positions, in order, are ``offsets`` (relative to the first member);
    ``ValueError`` if no layout lists them."""
    n = len(offsets)
    sizes: list[int] = []
    strides: list[int] = []
    block = 1
    while block < n:
        stride, count = offsets[block], 1
        while block * count < n and offsets[block * count] == count * stride:
            count += 1
        if n % (block * count):
            break
        sizes.append(count)
        strides.append(stride)
        block *= count
    expected = [0]
    for size, stride in zip(sizes, strides):
        expected = [e + k * stride for k in range(size) for e in expected]
    if expected != offsets:
        raise ValueError(f"mesh positions {offsets} are not a strided layout")
    return AxisLayout.of(tuple(reversed(sizes)), tuple(reversed(strides)))


def dim_layout(mesh: Any, dim: int, positions: dict[int, int]) -> AxisLayout:
    """The layout of dimension ``dim`` of ``mesh`` over its root's positions (``positions``: rank → position)."""
    layout = getattr(mesh, "_layout", None)
    if layout is not None:
        flat = layout[dim]
        return AxisLayout.of(_ints(flat.shape), _ints(flat.stride))
    line = mesh.mesh.movedim(dim, -1).reshape(-1, mesh.mesh.shape[dim])[0].tolist()
    first = positions[line[0]]
    return layout_of_offsets([positions[r] - first for r in line])


def _ints(value: Any) -> tuple[int, ...]:
    """A CuTe int-tuple (an int, or nested tuples of them; releases differ) as a flat tuple."""
    if isinstance(value, int):
        return (value,)
    return tuple(i for part in value for i in _ints(part))
