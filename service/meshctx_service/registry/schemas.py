"""Wire models of the registry routes (``/v1/clusters``, ``/v1/jobs``); docs/registry.md describes them.

Requests are strict like ``topology.schemas.TopologyBody``; names and labels are checked by the registry itself so
that every bad field is reported at once. Responses send the registry records' ``to_dict()`` unchanged;
these models only document them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from meshctx.job_states import NAMES as STATE_NAMES

from ..http.errors import ProblemDetails
from ..http.wire import Int, Strict
from ..placement.schemas import AxisPlacementOut, ClusterTopologyBody, TopologyOut
from ..topology.schemas import PlanOut, ProblemOut, SuggestionOut, TopologyBody

if TYPE_CHECKING:
    State = str
else:  # the job states as a literal (not the enum), so strict request parsing accepts the JSON string
    State = Literal[STATE_NAMES]
Name = Annotated[str, Field(min_length=1, max_length=128, examples=["team-a-llama-70b"])]
Hostlist = Annotated[str, Field(min_length=1, max_length=65536, examples=["gpu-[001-004]"])]
Host = Annotated[str, Field(min_length=1, max_length=253)]


class ClusterIn(Strict):
    """A cluster's shape: ``nodes`` × ``gpus_per_node`` GPUs, optionally grouped in NVLink domains."""

    nodes: Int
    gpus_per_node: Int
    nvlink_domain: Int | None = None
    topology: ClusterTopologyBody | None = Field(
        default=None,
        description="The cluster's nodes (meshctx topology JSON, `POST /v1/topology/import` makes it): `nodes` "
        "entries of `gpus_per_node` GPUs each. Jobs naming their allocation, and `POST /v1/place` with "
        "`cluster_name`, are placed on it.",
    )


class ClusterOut(BaseModel):
    name: str
    nodes: int
    gpus_per_node: int
    nvlink_domain: int | None
    gpus: int
    topology: TopologyOut | None = Field(default=None, description="Absent from listings unless `?topology=true`.")
    created_at: str
    updated_at: str


class ClusterPage(BaseModel):
    items: list[ClusterOut]
    next_cursor: str | None


class JobIn(Strict):
    """A job's topology (the ``/v1/validate`` body), optionally on a registered cluster, with labels."""

    request: TopologyBody
    cluster: Name | None = None
    labels: dict[str, str] = Field(default_factory=dict, examples=[{"team": "llm", "priority": "high"}])
    nodes: Hostlist | list[Host] | None = Field(
        default=None,
        description="The job's allocated hosts (a Slurm hostlist such as `gpu-[001-004]`, or a list), held while "
        "the job is active (409 `nodes_in_use` when an active job holds one); on a cluster with a topology they are "
        "placed, and the placement stored with the job.",
    )
    lease_seconds: Int | None = Field(
        default=None,
        description="The job is `lost` (and frees its GPUs and nodes) unless a heartbeat, an attestation or the same "
        "registration again renews it within this many seconds; 0: no lease. Default `MESHCTX_JOB_LEASE_S`.",
    )


class JobPlacementOut(BaseModel):
    """Node rank ``i`` runs on ``order[i]``; per axis its groups, crossings per tier and their lower bounds."""

    order: list[str]
    gpus_per_node: int
    axes: dict[str, AxisPlacementOut]


class JobOut(BaseModel):
    job_id: str
    cluster: str | None
    labels: dict[str, str]
    request: dict[str, Any]
    plan: PlanOut
    fingerprint: str
    gpus: int
    placement: JobPlacementOut | None
    nodes: list[str] | None
    state: State
    lease_seconds: int
    lease_expires_at: str | None
    version: int
    etag: str
    created_at: str
    updated_at: str
    #: On registration (PUT): the planner's warnings for this plan, the same ``validate`` gives.
    warnings: list[ProblemOut] | None = None


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class NodeOccupancyOut(BaseModel):
    node: str
    job: str | None


class OccupancyOut(BaseModel):
    """Per node, the active job holding it (``null``: free); the nodes are the cluster's topology, or those
    active jobs hold when it has none."""

    cluster: str
    nodes: int
    gpus_per_node: int
    gpus: int
    active_jobs: int
    held_gpus: int
    free_gpus: int
    held_nodes: int
    occupancy: list[NodeOccupancyOut]


class StateIn(Strict):
    state: State


class AttestationIn(Strict):
    """The fingerprint of the mesh the job built: ``MeshContext.to_plan().fingerprint()``."""

    fingerprint: Annotated[str, Field(min_length=1, max_length=80, examples=["sha256:0f3a…"])]


class AttestationOut(BaseModel):
    job_id: str
    expected: str
    reported: str
    matched: bool
    created_at: str


class AttestationList(BaseModel):
    items: list[AttestationOut]


class RegistryProblem(ProblemDetails):
    """problem+json with a stable ``code`` and the facts of the refusal (capacity numbers, both fingerprints,
    the current ETag, the planner's problems, …) as extra members; see docs/registry.md."""

    model_config = ConfigDict(extra="allow")
    code: str | None = None
    problems: list[ProblemOut] | None = None
    warnings: list[ProblemOut] | None = None
    suggestions: list[SuggestionOut] | None = None
