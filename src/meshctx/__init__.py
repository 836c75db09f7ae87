"""meshctx: know, before a job launches, exactly which device-mesh topology it will build.

``import meshctx`` never imports torch; ``MeshContext`` (which needs torch) is loaded on first use.
"""

from typing import TYPE_CHECKING, Any

from .config import DDPConfig, FSDP2Config, MegatronFSDPConfig
from .errors import MeshctxError
from .plan import (
    ClusterShape,
    MeshPlan,
    ModelShape,
    Problem,
    TopologyError,
    ValidationReport,
    plan_mesh,
    validate_topology,
)
from .plan.axes import MeshAxisName
from .plan.sizes import ParallelismSizes, ParallelSizes
from .plan.strategies import Strategy

if TYPE_CHECKING:
    from .runtime.context import MeshContext

__version__ = "0.1.0"

__all__ = [
    "ClusterShape",
    "DDPConfig",
    "FSDP2Config",
    "MegatronFSDPConfig",
    "MeshAxisName",
    "MeshContext",
    "MeshPlan",
    "MeshctxError",
    "ModelShape",
    "ParallelSizes",
    "ParallelismSizes",
    "Problem",
    "Strategy",
    "TopologyError",
    "ValidationReport",
    "plan_mesh",
    "validate_topology",
]


def __getattr__(name: str) -> Any:
    if name == "MeshContext":
        from .runtime.context import MeshContext

        return MeshContext
    raise AttributeError(f"module 'meshctx' has no attribute {name!r}")
