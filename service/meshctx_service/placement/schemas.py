"""Wire models of the placement endpoints (docs/placement.md).

Requests are strict (unknown fields, non-integers: 422 naming the field); sizes the schema cannot know
(the node limit, the text limit) are checked by the routes against the settings before any work.
Response models only document the answers; handlers send ``Placement.to_dict()`` unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from meshctx.place.topology import TierName, UnitTierName

from ..http.wire import Int, Strict
from ..topology.schemas import TopologyBody

Name = Annotated[str, Field(min_length=1, max_length=253)]
Unit = Annotated[str, Field(max_length=253)]


class NodeBody(Strict):
    """One node: its GPUs and the units that contain it (``null``: a unit of its own at that tier)."""

    name: Name
    gpus: Annotated[Int, Field(ge=1, le=1024)]
    nvlink_domain: Unit | None = None
    leaf: Unit | None = None
    spine: Unit | None = None


class ClusterTopologyBody(Strict):
    """The meshctx topology JSON (``Topology.to_dict()``); ``labels`` names the node label behind a tier."""

    nodes: Annotated[list[NodeBody], Field(min_length=1)]
    labels: dict[TierName, Annotated[str, Field(max_length=317)]] | None = None


class PlaceBody(TopologyBody):
    """A topology request (as for ``/v1/validate``) plus the cluster's topology (inline, or the one registered
    with ``cluster_name``) and the allocated nodes."""

    topology: ClusterTopologyBody | None = Field(
        default=None, description="The cluster's nodes inline; give this or `cluster_name`, not both."
    )
    cluster_name: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None,
        description="A registered cluster (`PUT /v1/clusters/{name}` with `topology`) of the caller's tenant, "
        "whose stored topology is used; needs a token with the read role when the registry requires tokens.",
    )
    nodes: Annotated[str, Field(min_length=1, max_length=65536)] | list[Name] | None = Field(
        default=None,
        description="Allocated hosts: a Slurm hostlist expression (`gpu-[001-032,040]`) or a list; "
        "absent: every node of the topology.",
    )
    command: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="The training command torchrun runs (default `train.py`)."
    )
    master_port: Annotated[Int, Field(ge=1, le=65535)] | None = None
    search: Literal["default", "exhaustive"] = Field(
        default="default",
        description="`default`: bounded work, ≤ 100 ms at 2,048 nodes. `exhaustive`: every axis sequence and a "
        "longer exact search, bounded too (seconds at most); the answer's `search.mode` says which ran.",
    )


ImportFormat = Literal["slurm-conf", "slurm-yaml", "kubectl"]


class ImportBody(Strict):
    """A cluster description to turn into meshctx topology JSON: Slurm's ``topology.conf`` or ``topology.yaml``
    as ``text`` (with ``gpus_per_node``: Slurm's files carry none), or ``kubectl get nodes -o json`` as
    ``object`` (or as ``text``)."""

    format: ImportFormat
    text: str | None = None
    object: dict[str, Any] | None = None
    gpus_per_node: Annotated[Int, Field(ge=1, le=1024)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(
        default=None, description="slurm-yaml: which topology of the file (default: cluster_default, else the first)"
    )
    label_map: dict[UnitTierName, Annotated[str, Field(min_length=1, max_length=317)]] | None = Field(
        default=None,
        description="kubectl: the node label key of a tier when the cluster uses its own "
        '(`{"leaf": "example.com/rack"}`); it replaces the known keys for that tier (leaf and spine together).',
    )


PLACE_EXAMPLES: dict[str, dict[str, Any]] = {
    "two_racks": {
        "summary": "tp 4 × 16 ranks on 4 nodes of 4 GPUs in two NVLink domains",
        "value": {
            "strategy": "fsdp2",
            "world_size": 16,
            "sizes": {"tp_size": 4, "pp_size": 2},
            "topology": {
                "nodes": [
                    {"name": f"gpu{i}", "gpus": 4, "nvlink_domain": f"nvl{i % 2}", "leaf": "leaf0", "spine": None}
                    for i in range(1, 5)
                ]
            },
            "nodes": "gpu[1-4]",
        },
    }
}

IMPORT_EXAMPLES: dict[str, dict[str, Any]] = {
    "slurm_tree": {
        "summary": "Slurm topology.conf, tree plugin",
        "value": {
            "format": "slurm-conf",
            "text": "SwitchName=s0 Nodes=gpu[1-2]\nSwitchName=s1 Nodes=gpu[3-4]\nSwitchName=top Switches=s[0-1]\n",
            "gpus_per_node": 8,
        },
    }
}


# ---------------------------------------------------------------------------------------------- responses
class CrossingOut(BaseModel):
    node: int
    nvlink_domain: int
    leaf: int
    spine: int


class AxisPlacementOut(BaseModel):
    groups: int
    crossing: CrossingOut
    lower_bound: CrossingOut


class BaselineAxisOut(BaseModel):
    crossing: CrossingOut


class PlacementOut(BaseModel):
    """Node rank ``i`` runs on ``order[i]``; rank ``r`` on ``order[r // gpus_per_node]``."""

    order: list[str]
    gpus_per_node: int
    axes: dict[str, AxisPlacementOut]
    baselines: dict[str, dict[str, BaselineAxisOut]]
    launch: dict[str, Any]


class NodeOut(BaseModel):
    name: str
    gpus: int
    nvlink_domain: str | None
    leaf: str | None
    spine: str | None


class TopologyOut(BaseModel):
    nodes: list[NodeOut]
    labels: dict[str, str] | None = None
    warnings: list[str] | None = Field(
        default=None, description="What the import could not see (nodes without topology labels, …); absent: none."
    )
