"""The torch-free planning core: every topology decision of meshctx is made here."""

from .cluster import ClusterShape
from .layout import AxisLayout
from .mesh_plan import MeshPlan, MeshSpec, axis_kwargs
from .model import ModelShape
from .planner import plan_mesh, validate_topology
from .problems import Code, Problem, Severity, TopologyError
from .report import ValidationReport, WorldSizeVerdict
from .request import TopologyRequest, parse_nnodes
from .sizes import ParallelismSizes, ResolvedSizes
from .suggest import Suggestion

__all__ = [
    "AxisLayout",
    "ClusterShape",
    "Code",
    "MeshPlan",
    "MeshSpec",
    "ModelShape",
    "ParallelismSizes",
    "Problem",
    "ResolvedSizes",
    "Severity",
    "Suggestion",
    "TopologyError",
    "TopologyRequest",
    "ValidationReport",
    "WorldSizeVerdict",
    "axis_kwargs",
    "parse_nnodes",
    "plan_mesh",
    "validate_topology",
]
