"""``/v1/clusters`` and ``/v1/jobs``: the topology registry behind HTTP (docs/registry.md).

Handlers are plain ``def``: the registry is synchronous SQLAlchemy, so FastAPI runs them in its thread
pool. ``RegistryError`` and ``AuthError`` are ``ServiceError``s, which the app's one handler turns into
problem+json (``http.errors``). Every operation is scoped to the tenant of the caller's token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from meshctx.plan import MeshPlan
from meshctx.plan.cluster import cluster_warnings

from ..auth import Principal, Role
from ..auth.gate import needs
from ..http.errors import InvalidFields
from .lazy import LazyRegistry
from .paging import DEFAULT_LIMIT, MAX_LIMIT
from .records import JobRecord
from .schemas import (
    AttestationIn,
    AttestationList,
    AttestationOut,
    ClusterIn,
    ClusterOut,
    ClusterPage,
    JobIn,
    JobOut,
    JobPage,
    OccupancyOut,
    RegistryProblem,
    StateIn,
)

if TYPE_CHECKING:
    from .store import Registry

router = APIRouter(prefix="/v1")

Reader = Annotated[Principal, Depends(needs(Role.READ))]
Writer = Annotated[Principal, Depends(needs(Role.WRITE))]
Admin = Annotated[Principal, Depends(needs(Role.ADMIN))]
ClusterName = Annotated[str, Path(description="Cluster name (letters, digits, '.', '_', '-').")]
JobId = Annotated[str, Path(description="Job id, chosen by the client (letters, digits, '.', '_', '-').")]
IfMatch = Annotated[str | None, Header(description="Proceed only if the job's current ETag is one of these (or `*`).")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most items on this page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")]


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "The body could not be read (not UTF-8 JSON).",
        413: "Body over the size limit.",
        401: "No, malformed or unknown bearer token (WWW-Authenticate says Bearer).",
        403: "The token's role is too low for this operation.",
        404: "No such cluster or job for this tenant (another tenant's is indistinguishable from none).",
        409: "Conflict: `code` says which (capacity_exceeded, job_exists, illegal_transition, …) with its facts.",
        412: "If-Match does not name the current ETag; `etag` is the current one.",
        422: "Malformed input (`errors` per field) or an invalid topology (`problems`, nothing stored).",
        503: "The database stayed busy; retry.",
    }
    return {status: {"model": RegistryProblem, "description": what[status]} for status in (401, 403, *statuses)}


def _registry(request: Request) -> Registry:
    lazy: LazyRegistry = request.app.state.registry
    return lazy.get()


def _job_response(job: JobRecord, status: int = 200, *, warned: bool = False) -> JSONResponse:
    """The job; ``warned``: with the planner's warnings for its stored plan (``cluster_warnings``, the rule
    ``validate`` applies), as a registration answers."""
    body = job.to_dict()
    if warned:
        body["warnings"] = [w.to_dict() for w in cluster_warnings(MeshPlan.from_dict(job.plan))]
    return JSONResponse(body, status_code=status, headers={"ETag": job.etag})


def _labels(pairs: list[str] | None) -> dict[str, str]:
    labels, errors = {}, []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            errors.append(("label", f"{pair!r} is not KEY=VALUE"))
        labels[key] = value
    if errors:
        raise InvalidFields(errors)
    return labels


# -- clusters -------------------------------------------------------------------------------------------------


@router.put(
    "/clusters/{name}",
    tags=["clusters"],
    response_model=None,
    status_code=200,
    responses={
        200: {"model": ClusterOut, "description": "Replaced (or unchanged)."},
        201: {"model": ClusterOut, "description": "Created."},
        **_problems(400, 413, 409, 422, 503),
    },
    summary="Create or reshape a cluster (admin)",
)
def put_cluster(name: ClusterName, body: ClusterIn, principal: Admin, request: Request) -> JSONResponse:
    """Reshaping a cluster that active jobs were planned on is a 409 ``cluster_in_use``. A ``topology`` that
    disagrees with the shape (node count, GPUs per node) is a 422 naming ``topology.nodes``."""
    record, created = _registry(request).put_cluster(
        principal.tenant,
        name,
        nodes=body.nodes,
        gpus_per_node=body.gpus_per_node,
        nvlink_domain=body.nvlink_domain,
        topology=None if body.topology is None else body.topology.model_dump(exclude_none=False),
        max_nodes=request.app.state.settings.max_place_nodes,
    )
    return JSONResponse(record.to_dict(), status_code=201 if created else 200)


@router.get(
    "/clusters/{name}",
    tags=["clusters"],
    response_model=None,
    responses={200: {"model": ClusterOut}, **_problems(404, 422)},
    summary="One cluster",
)
def get_cluster(name: ClusterName, principal: Reader, request: Request) -> JSONResponse:
    return JSONResponse(_registry(request).get_cluster(principal.tenant, name).to_dict())


@router.get(
    "/clusters",
    tags=["clusters"],
    response_model=None,
    responses={200: {"model": ClusterPage}, **_problems(422)},
    summary="The tenant's clusters, by name",
)
def list_clusters(
    principal: Reader,
    request: Request,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    topology: Annotated[bool, Query(description="Include each cluster's topology (its node list).")] = False,
) -> JSONResponse:
    page = _registry(request).list_clusters(principal.tenant, limit=limit, cursor=cursor, topology=topology)
    return JSONResponse({"items": [c.to_dict() for c in page.items], "next_cursor": page.next_cursor})


@router.get(
    "/clusters/{name}/occupancy",
    tags=["clusters"],
    response_model=None,
    responses={200: {"model": OccupancyOut}, **_problems(404, 422, 503)},
    summary="Which active job holds each node, and the free GPUs",
)
def occupancy(name: ClusterName, principal: Reader, request: Request) -> JSONResponse:
    return JSONResponse(_registry(request).occupancy(principal.tenant, name))


@router.delete(
    "/clusters/{name}",
    tags=["clusters"],
    status_code=204,
    response_model=None,
    responses={204: {"description": "Deleted."}, **_problems(404, 409, 422, 503)},
    summary="Delete a cluster without active jobs (admin)",
)
def delete_cluster(name: ClusterName, principal: Admin, request: Request) -> Response:
    _registry(request).delete_cluster(principal.tenant, name)
    return Response(status_code=204)


# -- jobs -----------------------------------------------------------------------------------------------------


@router.put(
    "/jobs/{job_id}",
    tags=["jobs"],
    response_model=None,
    responses={
        200: {"model": JobOut, "description": "The same body again (nothing changed), or replaced with If-Match."},
        201: {"model": JobOut, "description": "Registered; `ETag` names this version."},
        **_problems(400, 413, 404, 409, 412, 422, 503),
    },
    summary="Register a job's topology, optionally on a cluster (write)",
)
def put_job(job_id: JobId, body: JobIn, principal: Writer, request: Request, if_match: IfMatch = None) -> JSONResponse:
    """Validated by the planner (an invalid topology is a 422 listing every problem; nothing is stored) and,
    on a cluster, against its shape and free GPUs (409 ``capacity_exceeded`` with the numbers). With ``nodes``
    the allocation is placed on the cluster's topology (422 ``invalid_placement`` naming ``nodes`` otherwise)."""
    topology = body.request.checked_request(request.app.state.settings, field_prefix="request.")
    outcome = _registry(request).register_job(
        principal.tenant,
        job_id,
        topology,
        cluster=body.cluster,
        labels=body.labels,
        if_match=if_match,
        nodes=body.nodes,
        max_nodes=request.app.state.settings.max_place_nodes,
        lease_seconds=body.lease_seconds,
    )
    return _job_response(outcome.job, 201 if outcome.created else 200, warned=True)


@router.get(
    "/jobs/{job_id}",
    tags=["jobs"],
    response_model=None,
    responses={200: {"model": JobOut, "description": "With its `ETag`."}, **_problems(404, 422)},
    summary="A job: its request, plan, fingerprint, state and timestamps",
)
def get_job(job_id: JobId, principal: Reader, request: Request) -> JSONResponse:
    return _job_response(_registry(request).get_job(principal.tenant, job_id))


@router.get(
    "/jobs",
    tags=["jobs"],
    response_model=None,
    responses={200: {"model": JobPage}, **_problems(422)},
    summary="The tenant's jobs by id, filtered",
)
def list_jobs(
    principal: Reader,
    request: Request,
    cluster: Annotated[str | None, Query(max_length=128, description="Only jobs on this cluster.")] = None,
    state: Annotated[
        str | None, Query(max_length=32, description="registered, running, finished, failed or lost.")
    ] = None,
    label: Annotated[list[str] | None, Query(description="KEY=VALUE; repeat for several (all must hold).")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> JSONResponse:
    page = _registry(request).list_jobs(
        principal.tenant, cluster=cluster, state=state, labels=_labels(label), limit=limit, cursor=cursor
    )
    return JSONResponse({"items": [j.to_dict() for j in page.items], "next_cursor": page.next_cursor})


@router.delete(
    "/jobs/{job_id}",
    tags=["jobs"],
    status_code=204,
    response_model=None,
    responses={204: {"description": "Deleted; its GPUs are free."}, **_problems(404, 412, 422, 503)},
    summary="Delete a job and its attestations (write)",
)
def delete_job(job_id: JobId, principal: Writer, request: Request, if_match: IfMatch = None) -> Response:
    _registry(request).delete_job(principal.tenant, job_id, if_match=if_match)
    return Response(status_code=204)


@router.put(
    "/jobs/{job_id}/state",
    tags=["jobs"],
    response_model=None,
    responses={200: {"model": JobOut}, **_problems(400, 413, 404, 409, 412, 422, 503)},
    summary="Move a job along registered → running → finished | failed | lost (write)",
)
def put_state(
    job_id: JobId, body: StateIn, principal: Writer, request: Request, if_match: IfMatch = None
) -> JSONResponse:
    return _job_response(_registry(request).set_state(principal.tenant, job_id, body.state, if_match=if_match))


@router.post(
    "/jobs/{job_id}/heartbeat",
    tags=["jobs"],
    response_model=None,
    responses={
        200: {"model": JobOut, "description": "Renewed: `lease_expires_at` is now + `lease_seconds`."},
        **_problems(404, 409, 422, 503),
    },
    summary="Renew a job's lease while it runs (write)",
)
def heartbeat(job_id: JobId, principal: Writer, request: Request) -> JSONResponse:
    """An ended job (finished, failed, or lost because its lease ran out first) is a 409 ``job_ended``."""
    return _job_response(_registry(request).heartbeat(principal.tenant, job_id))


@router.post(
    "/jobs/{job_id}/attestations",
    tags=["jobs"],
    response_model=None,
    status_code=201,
    responses={
        201: {"model": AttestationOut, "description": "The fingerprints match; a registered job is now running."},
        **_problems(400, 413, 404, 409, 422, 503),
    },
    summary="Report the fingerprint of the mesh the job built (write)",
)
def attest(job_id: JobId, body: AttestationIn, principal: Writer, request: Request) -> JSONResponse:
    """A mismatch is recorded and answered 409 ``fingerprint_mismatch`` with ``expected`` and ``reported``."""
    record = _registry(request).attest(principal.tenant, job_id, body.fingerprint)
    return JSONResponse(record.to_dict(), status_code=201)


@router.get(
    "/jobs/{job_id}/attestations",
    tags=["jobs"],
    response_model=None,
    responses={200: {"model": AttestationList}, **_problems(404, 422)},
    summary="Every fingerprint the job reported, oldest first",
)
def attestations(job_id: JobId, principal: Reader, request: Request) -> JSONResponse:
    found = _registry(request).attestations(principal.tenant, job_id)
    return JSONResponse({"items": [a.to_dict() for a in found]})
