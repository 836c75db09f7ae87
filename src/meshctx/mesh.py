"""A NeMo-shaped module: the names of NeMo Automodel 0.7.0's ``nemo_automodel.components.distributed.mesh``.

Swapping ``from nemo_automodel.components.distributed.mesh import MeshContext`` for ``from meshctx.mesh import
MeshContext`` — or aliasing the whole module in ``sys.modules`` — is the migration. The private helpers NeMo code
imports (``_get_axis_size``, ``_optional_axis``, ``_validate_mesh_axis_names``, ``_VALID_AXIS_NAMES``) behave as
NeMo's do, duck-typed meshes included (anything with ``mesh_dim_names`` and ``mesh[axis].size()``).
``MeshContext`` is loaded on first use, so importing this module never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshctx import MeshAxisName, ParallelismSizes
from meshctx.runtime.mesh_axes import (  # noqa: F401  NeMo code imports these private names from this module
    _VALID_AXIS_NAMES,
    _get_axis_size,
    _optional_axis,
    _validate_mesh_axis_names,
)

if TYPE_CHECKING:
    from meshctx import MeshContext


def __getattr__(name: str) -> Any:
    if name == "MeshContext":
        from meshctx import MeshContext

        return MeshContext
    raise AttributeError(f"module 'meshctx.mesh' has no attribute {name!r}")


__all__ = ["MeshAxisName", "MeshContext", "ParallelismSizes"]  # as NeMo's; the private helpers are imported by name
