"""``POST /v1/place`` and ``POST /v1/topology/import``: the placement core behind HTTP, answering the CLI's JSON.

Bounded: the body is read on the event loop (at most ``MESHCTX_MAX_BODY_BYTES``) and everything else runs on the
service's work pool (``http/work.py``, shared with every planning route) under its deadline, so ``/livez`` keeps
answering: parsing (pydantic takes ~80 ms for a 1 MiB topology), the node count and text size checked against
the settings before any other work, then the hostlist expansion (bounded by the node limit), the import or the
placement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from meshctx.place import (
    Topology,
    topology_from_kubectl,
    topology_from_slurm_conf,
    topology_from_slurm_yaml,
)
from meshctx.place.answer import place_answer
from meshctx.place.hostlist import expand_hosts
from meshctx.place.launch import MASTER_PORT

from ..auth import Role
from ..auth.gate import Gate
from ..http.errors import REFUSED, InvalidFields, ProblemDetails
from ..http.openapi import body_doc
from ..http.responses import FastJSONResponse
from ..http.work import WorkPool
from ..registry.store import Registry
from ..settings import Settings
from ..topology.schemas import ValidationReportOut
from .schemas import IMPORT_EXAMPLES, PLACE_EXAMPLES, ImportBody, PlaceBody, PlacementOut, TopologyOut

router = APIRouter(prefix="/v1", tags=["placement"])

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

BUSY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ProblemDetails,
        "description": "Every planning thread is busy, or the work ran past `MESHCTX_WORK_DEADLINE_S`: `service_busy`.",
    }
}


async def _off_loop(request: Request, work: Callable[[], T]) -> T:
    """``work()`` on the shared work pool; ``Busy`` (503 + ``Retry-After``) when saturated or past its deadline."""
    pool: WorkPool = request.app.state.work
    return await pool.run(work)


def _parse(model: type[M], raw: bytes) -> M:
    """The body as ``model`` (in the worker: a 1 MiB topology takes pydantic ~80 ms); 422 naming each field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _too_many(field: str, count: int, settings: Settings) -> tuple[str, str]:
    return (field, f"{count} nodes exceed the {settings.max_place_nodes} this service places (MESHCTX_MAX_PLACE_NODES)")


def _registered_topology(request: Request, name: str) -> dict[str, Any]:
    """The topology stored with the caller's cluster ``name``: 401/403 without a token that may read, 404 for no
    such cluster in the tenant (another tenant's included), 422 naming ``cluster_name`` when it has none."""
    gate: Gate = request.app.state.gate
    principal = gate.principal(request.headers.get("authorization"), Role.READ)
    registry: Registry = request.app.state.registry
    cluster = registry.get_cluster(principal.tenant, name)
    if cluster.topology is None:
        raise InvalidFields(
            [
                (
                    "cluster_name",
                    f"cluster {name!r} is registered without a topology; register one (PUT /v1/clusters/{name} "
                    "with topology, or meshctx clusters put --topology FILE) or send topology inline",
                )
            ]
        )
    return cluster.topology


def _placement(raw: bytes, settings: Settings, http: Request) -> dict[str, Any]:
    """The whole placement, in a worker thread: the body, its limits, hosts, topology, plan, order — or 422
    naming the field."""
    body = _parse(PlaceBody, raw)
    errors = []
    if isinstance(body.nnodes, str):
        errors.append(("nnodes", "placement needs one node count, not an elastic range MIN:MAX"))
    if (body.topology is None) == (body.cluster_name is None):
        errors.append(("topology", "required: the cluster's topology inline or a registered cluster_name, not both"))
    if body.topology is not None and len(body.topology.nodes) > settings.max_place_nodes:
        errors.append(_too_many("topology.nodes", len(body.topology.nodes), settings))
    if isinstance(body.nodes, list) and len(body.nodes) > settings.max_place_nodes:
        errors.append(_too_many("nodes", len(body.nodes), settings))
    if errors:
        raise InvalidFields(errors)
    request = body.checked_request(settings)
    try:
        hosts = None if body.nodes is None else expand_hosts(body.nodes, limit=settings.max_place_nodes)
    except ValueError as error:
        raise InvalidFields([("nodes", str(error))]) from None
    if body.topology is not None:
        data = body.topology.model_dump(exclude_none=False)
    else:
        assert body.cluster_name is not None  # checked above
        data = _registered_topology(http, body.cluster_name)
    try:
        topology = Topology.from_dict(data)
    except ValueError as error:
        raise InvalidFields([("topology", str(error))]) from None
    command = tuple(body.command) if body.command else None
    return place_answer(request, topology, hosts, command=command, master_port=body.master_port or MASTER_PORT)


@router.post(
    "/place",
    response_model=None,
    responses={
        200: {
            "model": PlacementOut | ValidationReportOut,
            "description": "The placement (DESIGN's JSON: `order`, `gpus_per_node`, `axes`, `baselines`, "
            "`launch`), or — when the topology or the allocation has problems — a report with `valid: false` "
            "and every problem (recognize it by its `valid` key).",
        },
        **BUSY,
        **REFUSED,
        404: {"model": ProblemDetails, "description": "`cluster_name` names no cluster of the caller's tenant."},
    },
    summary="Order the allocated nodes so the plan's groups stay inside fast links",
    openapi_extra=body_doc(PlaceBody, PLACE_EXAMPLES),
)
async def place_route(request: Request) -> FastJSONResponse:
    """Like ``meshctx place --json``: node rank ``i`` runs on ``order[i]``; crossings per axis and tier against
    hostname order (c10d) and natural order (Slurm), the lower bounds, and the launch lines per scheduler.
    The topology is given inline (meshctx JSON; ``POST /v1/topology/import`` converts Slurm and kubectl files),
    or ``cluster_name`` names a registered cluster whose stored topology is used (tenant-scoped like
    ``GET /v1/clusters/{name}``)."""
    settings: Settings = request.app.state.settings
    raw = await request.body()  # bounded by MESHCTX_MAX_BODY_BYTES (413 above)
    return FastJSONResponse(await _off_loop(request, lambda: _placement(raw, settings, request)))


def _imported(raw: bytes, settings: Settings) -> dict[str, Any]:
    """The importer, in a worker thread; a malformed file is a 422 naming ``text`` or ``object``."""
    body = _parse(ImportBody, raw)
    _check_import(body, settings)
    field = "object" if body.object is not None else "text"
    try:
        if body.format == "kubectl":
            data = body.object if body.object is not None else json.loads(body.text or "")
            topology = topology_from_kubectl(data)
        elif body.format == "slurm-yaml":
            assert body.text is not None and body.gpus_per_node is not None  # checked before
            topology = topology_from_slurm_yaml(body.text, gpus_per_node=body.gpus_per_node, name=body.name)
        else:
            assert body.text is not None and body.gpus_per_node is not None
            topology = topology_from_slurm_conf(body.text, gpus_per_node=body.gpus_per_node)
    except ValueError as error:  # json.JSONDecodeError is one
        raise InvalidFields([(field, str(error))]) from None
    if not topology.nodes:
        raise InvalidFields([(field, f"{body.format}: lists no nodes (kubectl: none with nvidia.com/gpu)")])
    if len(topology.nodes) > settings.max_place_nodes:
        raise InvalidFields([_too_many(field, len(topology.nodes), settings)])
    return topology.to_dict()


@router.post(
    "/topology/import",
    response_model=None,
    responses={200: {"model": TopologyOut, "description": "The meshctx topology JSON."}, **BUSY, **REFUSED},
    summary="Convert Slurm topology.conf / topology.yaml or kubectl nodes to meshctx topology JSON",
    openapi_extra=body_doc(ImportBody, IMPORT_EXAMPLES),
)
async def import_topology(request: Request) -> FastJSONResponse:
    """Slurm's files carry no GPU counts, hence ``gpus_per_node``; kubectl's nodes carry
    ``status.allocatable["nvidia.com/gpu"]`` (nodes without GPUs are left out)."""
    settings: Settings = request.app.state.settings
    raw = await request.body()  # bounded by MESHCTX_MAX_BODY_BYTES (413 above)
    return FastJSONResponse(await _off_loop(request, lambda: _imported(raw, settings)))


def _check_import(body: ImportBody, settings: Settings) -> None:
    """What each format needs, and the limits, before the importer runs."""
    errors: list[tuple[str, str]] = []
    if body.format == "kubectl":
        if (body.object is None) == (body.text is None):
            errors.append(("object", "kubectl: give the `kubectl get nodes -o json` output as object (or as text)"))
        items = body.object.get("items") if body.object is not None else None
        if isinstance(items, list) and len(items) > settings.max_place_nodes:
            errors.append(_too_many("object.items", len(items), settings))
    else:
        if body.text is None:
            errors.append(("text", f"{body.format}: give the file's contents as text"))
        if body.object is not None:
            errors.append(("object", f"{body.format}: takes text, not object"))
        if body.gpus_per_node is None:
            errors.append(("gpus_per_node", f"{body.format}: Slurm's topology files carry no GPU counts; give one"))
    size = len(body.text.encode("utf-8", "surrogatepass")) if body.text is not None else 0
    if size > settings.max_topology_text_bytes:
        limit = settings.max_topology_text_bytes
        errors.append(("text", f"{size} bytes exceed the {limit} this service reads (MESHCTX_MAX_TOPOLOGY_TEXT_BYTES)"))
    if errors:
        raise InvalidFields(errors)
