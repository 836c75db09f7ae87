"""Reading a mesh's axes the way NeMo's helpers do, torch-free and duck-typed: a torch ``DeviceMesh`` or any
object with ``mesh_dim_names`` and ``mesh[axis].size()``. ``MeshContext`` and the NeMo-shaped ``meshctx.mesh``
module share these, so both answer exactly as NeMo's module-level helpers."""

from __future__ import annotations

from typing import Any

from ..plan.axes import MeshAxisName

#: Every value accepted as a ``DeviceMesh`` axis name (the enum members, as in NeMo).
_VALID_AXIS_NAMES: frozenset[MeshAxisName] = frozenset(MeshAxisName)


def _is_torch_mesh(mesh: object) -> bool:
    return type(mesh).__module__ == "torch.distributed.device_mesh"


def _root_flatten_mapping(mesh: Any) -> Any:
    """The flattened meshes registered on ``mesh``'s root (``None`` if it keeps none): torch's, on every torch
    release (see ``torch_compat``); for any other object its root's ``_flatten_mapping``, as NeMo reads it."""
    if _is_torch_mesh(mesh):
        from .torch_compat import flatten_mapping, root_mesh

        return flatten_mapping(root_mesh(mesh))
    root = mesh._get_root_mesh() if hasattr(mesh, "_get_root_mesh") else mesh
    return getattr(root, "_flatten_mapping", None)


def _get_axis_size(mesh: Any, axis: str, default: int | None = 1) -> int | None:
    """The size of ``axis``: a dimension of ``mesh``, else a flattened axis registered on its root, else
    ``default``. A torch mesh is read without slicing it (slicing costs ~100 µs); any other object as NeMo does."""
    if mesh is None:
        return default
    names = mesh.mesh_dim_names or ()
    if axis in names:
        if _is_torch_mesh(mesh):
            return int(mesh.size(list(names).index(axis)))
        return mesh[axis].size()
    mapping = _root_flatten_mapping(mesh)
    if mapping is not None and axis in mapping:
        return mapping[axis].size()
    return default


def _optional_axis(mesh: Any, axis: MeshAxisName) -> MeshAxisName | None:
    """``axis`` when it is a real dimension of ``mesh`` (flattened axes do not count), else ``None``."""
    if mesh is not None and axis in (mesh.mesh_dim_names or ()):
        return axis
    return None


def _unknown_axis_message(label: str, mesh: Any) -> str | None:
    if mesh is None:
        return None
    bad = {n for n in mesh.mesh_dim_names or () if n not in _VALID_AXIS_NAMES}
    if not bad:
        return None
    return (
        f"{label} contains unknown axis names {bad}; allowed names are {sorted(_VALID_AXIS_NAMES)}. "
        "Name the mesh dimensions with MeshAxisName values (e.g. 'dp_shard', 'tp')."
    )


def _validate_mesh_axis_names(mesh_context: Any) -> None:
    """Raise ``ValueError`` if ``device_mesh`` or ``moe_mesh`` of ``mesh_context`` has an unknown axis name."""
    for label in ("device_mesh", "moe_mesh"):
        message = _unknown_axis_message(label, getattr(mesh_context, label))
        if message is not None:
            raise ValueError(message)
