"""Mesh-aware placement: which allocated node runs which node rank, so groups stay inside fast links.

Pure and stdlib-only (topology.yaml parsing imports PyYAML when called). ``place(plan, topology,
allocation)`` returns a ``Placement`` whose ``to_dict()`` is the ``meshctx place --json`` body.
"""

from .crossings import PRIORITY
from .hostlist import format_hostlist, natural_key, parse_hostlist
from .importers import topology_from_kubectl, topology_from_slurm_conf, topology_from_slurm_yaml
from .placer import check_allocation, place
from .problems import PlacementError
from .report import AxisPlacement, Crossing, Placement
from .scheduler_orders import Launch, check_topology_assignment
from .topology import TIER_NAMES, Node, TierName, Topology

__all__ = [
    "PRIORITY",
    "TIER_NAMES",
    "AxisPlacement",
    "Crossing",
    "Launch",
    "Node",
    "Placement",
    "PlacementError",
    "TierName",
    "Topology",
    "check_allocation",
    "check_topology_assignment",
    "format_hostlist",
    "natural_key",
    "parse_hostlist",
    "place",
    "topology_from_kubectl",
    "topology_from_slurm_conf",
    "topology_from_slurm_yaml",
]
