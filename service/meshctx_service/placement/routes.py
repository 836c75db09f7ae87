"""``POST /v1/place`` and ``POST /v1/topology/import``: the placement core behind HTTP, answering the CLI's JSON.

Bounded: the body is read on the event loop (at most ``MESHCTX_MAX_BODY_BYTES``) and everything else runs on the
service's work pool (``http/work.py``, shared with every planning route) under its deadline, so ``/livez`` keeps
answering: parsing (pydantic takes ~80 ms for a 1 MiB topology), the node count and text size checked against
the settings before any other work, then the hostlist expansion (bounded by the node limit), the import or the
placement (``search: exhaustive`` too: its orders and its exact search are bounded by the library, a few
seconds at most at any size, docs/placement.md "Modes").
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from meshctx.launch.spec import DEFAULT_MASTER_PORT
from meshctx.place import Topology
from meshctx.place.answer import place_answer
from meshctx.place.hostlist import expand_hosts
from meshctx.place.importers import import_kubectl, import_slurm_conf, import_slurm_yaml, load_json

from ..auth import Role
from ..auth.gate import Gate
from ..http.errors import REFUSED, InvalidFields, ProblemDetails
from ..http.openapi import body_doc
from ..http.responses import FastJSONResponse
from ..http.work import off_loop
from ..registry.lazy import LazyRegistry
from ..settings import Settings
from ..topology.schemas import ValidationReportOut
from .fastbody import parse_place_body
from .memory import gc_paused
from .schemas import IMPORT_EXAMPLES, PLACE_EXAMPLES, ImportBody, PlaceBody, PlacementOut, TopologyOut

router = APIRouter(prefix="/v1", tags=["placement"])
MAX_HOST_NAME = 253

M = TypeVar("M", bound=BaseModel)

BUSY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ProblemDetails,
        "description": "Every planning thread is busy, or the work ran past `MESHCTX_WORK_DEADLINE_S`: `service_busy`.",
    }
}


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
    registry: LazyRegistry = request.app.state.registry
    cluster = registry.get().get_cluster(principal.tenant, name)
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
    """The whole placement, in a worker thread: the body (``fastbody``: orjson and plain checks, so the GIL is
    never held for long), its limits, hosts, topology, plan, order — or 422 naming the field. The node limit
    counts the allocation (the nodes placed), not the topology they are picked from."""
    body, inline = parse_place_body(raw)
    errors = []
    if isinstance(body.nnodes, str):
        errors.append(("nnodes", "placement needs one node count, not an elastic range MIN:MAX"))
    if (inline is not None or body.topology is not None) == (body.cluster_name is not None):
        errors.append(("topology", "required: the cluster's topology inline or a registered cluster_name, not both"))
    if isinstance(body.nodes, list) and len(body.nodes) > settings.max_place_nodes:
        errors.append(_too_many("nodes", len(body.nodes), settings))
    if errors:
        raise InvalidFields(errors)
    request = body.checked_request(settings)
    try:
        hosts = None if body.nodes is None else expand_hosts(body.nodes, limit=settings.max_place_nodes)
    except ValueError as error:
        raise InvalidFields([("nodes", str(error))]) from None
    long_name = next((h for h in hosts or () if len(h) > MAX_HOST_NAME), None)
    if long_name is not None:
        shown = f"{long_name[:40]!r}… ({len(long_name)} characters)"
        raise InvalidFields([("nodes", f"host {shown} is longer than {MAX_HOST_NAME} characters (RFC 1123)")])
    if inline is not None:
        data = inline
    elif body.topology is not None:
        data = body.topology.model_dump(exclude_none=False)
    else:
        assert body.cluster_name is not None  # checked above
        data = _registered_topology(http, body.cluster_name)
    if hosts is None and len(data["nodes"]) > settings.max_place_nodes:
        raise InvalidFields([_too_many("topology.nodes", len(data["nodes"]), settings)])
    try:
        topology = Topology.from_dict(data)
    except ValueError as error:
        raise InvalidFields([("topology", str(error))]) from None
    command = tuple(body.command) if body.command else None
    port = body.master_port or DEFAULT_MASTER_PORT
    return place_answer(request, topology, hosts, command=command, master_port=port, search=body.search)


def _paused(raw: bytes, settings: Settings, http: Request) -> dict[str, Any]:
    with gc_paused():
        return _placement(raw, settings, http)


@router.post(
    "/place",
    response_model=None,
    responses={
        200: {
            "model": PlacementOut | ValidationReportOut,
            "description": "The placement (as `meshctx place --json`: `order`, `gpus_per_node`, `axes`, `baselines`, "
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
    raw = await request.body()  # bounded by MESHCTX_MAX_PLACE_BODY_BYTES (413 above)
    answer = await off_loop(request.app.state, _paused, raw, settings, request)
    # the heap a big placement freed goes back after the response (http/memory.py: trim_soon, for slow requests)
    return FastJSONResponse(answer)


def _imported(raw: bytes, settings: Settings) -> dict[str, Any]:
    """The importer, in a worker thread; a malformed file is a 422 naming ``text`` or ``object``. Every importer
    reads at most the service's node limit (all hostlists of a file, or kubectl items, counted together)."""
    body = _parse(ImportBody, raw)
    _check_import(body, settings)
    field = "object" if body.object is not None else "text"
    limit = settings.max_place_nodes
    try:
        if body.format == "kubectl":
            data = body.object if body.object is not None else load_json(body.text or "", "kubectl nodes")
            label_map = {str(tier): key for tier, key in body.label_map.items()} if body.label_map else None
            imported = import_kubectl(data, label_map=label_map, limit=limit)
        elif body.format == "slurm-yaml":
            assert body.text is not None and body.gpus_per_node is not None  # checked before
            imported = import_slurm_yaml(body.text, gpus_per_node=body.gpus_per_node, name=body.name, limit=limit)
        else:
            assert body.text is not None and body.gpus_per_node is not None
            imported = import_slurm_conf(body.text, gpus_per_node=body.gpus_per_node, limit=limit)
    except ValueError as error:  # json.JSONDecodeError is one
        raise InvalidFields([(field, str(error))]) from None
    topology = imported.topology
    if not topology.nodes:
        raise InvalidFields([(field, f"{body.format}: lists no nodes (kubectl: none with nvidia.com/gpu)")])
    if len(topology.nodes) > limit:
        raise InvalidFields([_too_many(field, len(topology.nodes), settings)])
    answer = topology.to_dict()
    if imported.warnings:
        answer["warnings"] = list(imported.warnings)
    return answer


@router.post(
    "/topology/import",
    response_model=None,
    responses={200: {"model": TopologyOut, "description": "The meshctx topology JSON."}, **BUSY, **REFUSED},
    summary="Convert Slurm topology.conf / topology.yaml or kubectl nodes to meshctx topology JSON",
    openapi_extra=body_doc(ImportBody, IMPORT_EXAMPLES),
)
async def import_topology(request: Request) -> FastJSONResponse:
    """Slurm's files carry no GPU counts, hence ``gpus_per_node``; kubectl's nodes carry
    ``status.allocatable["nvidia.com/gpu"]`` (nodes without GPUs are left out). ``warnings`` (when present) says
    what the import could not see: GPU nodes without topology labels, GPUs counted from a label."""
    settings: Settings = request.app.state.settings
    raw = await request.body()  # bounded by MESHCTX_MAX_BODY_BYTES (413 above)
    return FastJSONResponse(await off_loop(request.app.state, _imported, raw, settings))


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
        if body.label_map is not None:
            errors.append(("label_map", f"{body.format}: label_map names Kubernetes node labels (format kubectl)"))
    size = len(body.text.encode("utf-8", "surrogatepass")) if body.text is not None else 0
    if size > settings.max_topology_text_bytes:
        limit = settings.max_topology_text_bytes
        errors.append(("text", f"{size} bytes exceed the {limit} this service reads (MESHCTX_MAX_TOPOLOGY_TEXT_BYTES)"))
    if errors:
        raise InvalidFields(errors)
