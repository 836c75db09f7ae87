"""Kubernetes validating admission (``admission.k8s.io/v1`` AdmissionReview) for training jobs, and its
webhook ``POST /v1/admission/kubernetes``.

A workload opts in with ``meshctx.io/*`` annotations on its own metadata; anything without one is
allowed untouched. The world comes from the workload's spec (``meshctx.integrations.workloads``), the
sizes from the annotations, and both pass the ``/v1/validate`` limits before any planning. Only CREATE
and an UPDATE that changes the topology are checked: deletion-time updates (finalizers), Kueue's
unsuspend and status changes of an admitted job always pass. Denials carry status 403 for an invalid
topology (as Kubernetes' own examples and controller-runtime do) and 422 for unreadable or oversized
``meshctx.io/*`` annotations or job fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from meshctx.integrations.job_sizes import read_job_sizes, shown
from meshctx.integrations.limits import Check, Limits
from meshctx.integrations.workloads import MAX_PROBLEMS, WORKLOADS, World, get
from meshctx.launch.annotations import FINGERPRINT, MODEL_ANNOTATIONS, SIZE_ANNOTATIONS, STRATEGY
from meshctx.launch.annotations import PREFIX as ANNOTATION_PREFIX
from meshctx.plan.request import TopologyRequest

from ..http.errors import REFUSED, InvalidFields
from ..http.wire import Open
from ..settings import Settings
from .admission_register import register_admitted
from .checks import LongNumbersRoute, TooSlow, limits_of, off_loop

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
WARNING_LIMIT = 120
CODE_INVALID_TOPOLOGY = 403
CODE_UNREADABLE = 422
#: Longest workload name quoted in a message (a hostile body may carry a megabyte of one).
NAME_LIMIT = 120


class AdmissionReviewError(InvalidFields):
    """The body is not an AdmissionReview, so it cannot be answered with one: a 422 problem naming each field."""


def shorten(text: str, limit: int = WARNING_LIMIT) -> str:
    """At most ``limit`` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _check_envelope(body: object) -> tuple[str, Mapping[str, Any]]:
    errors: list[tuple[str, str]] = []
    if not isinstance(body, Mapping):
        raise AdmissionReviewError([("body", "expected an AdmissionReview JSON object")])
    api_version = body.get("apiVersion")
    if api_version not in API_VERSIONS:
        errors.append(("apiVersion", f"expected one of {', '.join(API_VERSIONS)}, got {api_version!r}"))
    if body.get("kind") != "AdmissionReview":
        errors.append(("kind", f"expected AdmissionReview, got {body.get('kind')!r}"))
    request = body.get("request")
    if not isinstance(request, Mapping):
        errors.append(("request", "expected the AdmissionRequest object"))
    else:
        if not isinstance(request.get("uid"), str) or not request.get("uid"):
            errors.append(("request.uid", "expected a non-empty string"))
        if request.get("object") is not None and not isinstance(request.get("object"), Mapping):
            errors.append(("request.object", "expected an object or null"))
    if errors:
        raise AdmissionReviewError(errors)
    return str(api_version), request  # type: ignore[return-value]


def _deny(code: int, message: str) -> dict[str, object]:
    return {"allowed": False, "status": {"code": code, "message": message}}


def _listed(problems: list[str]) -> str:
    first = problems[:MAX_PROBLEMS]
    more = len(problems) - len(first)
    return "; ".join(first) + (f"; and {more} more" if more else "")


def _opted_in(annotations: Mapping[str, object]) -> bool:
    return any(str(k).startswith(ANNOTATION_PREFIX) for k in annotations)


def _kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(API group, kind); the core group is ``""`` (``apiVersion: v1``)."""
    return str(obj.get("apiVersion", "")).rpartition("/")[0], str(obj.get("kind", ""))


def _topology_key(obj: Mapping[str, Any]) -> tuple[object, ...]:
    """What decides the verdict on ``obj``: its kind, ``meshctx.io/*`` annotations and world as read."""
    annotations = get(obj, "metadata", "annotations")
    if not isinstance(annotations, Mapping):
        return ("annotations", shown(annotations))
    mine = sorted(((str(k), v) for k, v in annotations.items() if str(k).startswith(ANNOTATION_PREFIX)), key=_first)
    reader = WORKLOADS.get(_kind(obj))
    world = reader(obj, annotations).key() if reader is not None and mine else None
    return (_kind(obj), mine, world)


def _first(pair: tuple[str, object]) -> str:
    return pair[0]


def _deleting(request: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """An UPDATE of an object being deleted (its finalizers come off): never meshctx's to refuse."""
    return request.get("operation") == "UPDATE" and get(obj, "metadata", "deletionTimestamp") is not None


def _unchanged_update(request: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """An UPDATE whose topology is what it was (Kueue's unsuspend, labels, status, anything meshctx does
    not read): the object was checked when it was created or last resized."""
    if request.get("operation") != "UPDATE":
        return False
    old = request.get("oldObject")
    return isinstance(old, Mapping) and _topology_key(old) == _topology_key(obj)


def decide(request: Mapping[str, Any], check: Check | None = None) -> dict[str, object]:
    """The response fields other than ``uid`` for one AdmissionRequest; ``check`` bounds the topology
    before any planning (the service passes its ``/v1/validate`` limits; default: ``Limits()``)."""
    obj = request.get("object")
    if request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, Mapping) or _deleting(request, obj):
        return {"allowed": True}
    annotations = get(obj, "metadata", "annotations")
    if annotations is None:
        return {"allowed": True}
    group, kind = _kind(obj)
    namespace = get(obj, "metadata", "namespace") or request.get("namespace") or ""
    name = shorten(f"{kind} {namespace}/{get(obj, 'metadata', 'name') or ''}", NAME_LIMIT)
    if not isinstance(annotations, Mapping):
        return _deny(
            CODE_UNREADABLE, f"meshctx: {name}: metadata.annotations must be a mapping, got {shown(annotations)}"
        )
    if not _opted_in(annotations) or _unchanged_update(request, obj):
        return {"allowed": True}
    reader = WORKLOADS.get((group, kind))
    if reader is None:
        supported = ", ".join(k for _, k in WORKLOADS)
        warning = shorten(f"meshctx: cannot read the world size of {shown(kind)}; checks {supported}")
        return {"allowed": True, "warnings": [warning]}
    job = read_job_sizes(annotations, STRATEGY, SIZE_ANNOTATIONS | MODEL_ANNOTATIONS)
    world = reader(obj, annotations)
    unreadable = job.errors + world.problems
    if unreadable:
        return _deny(CODE_UNREADABLE, f"meshctx: {name}: {_listed(unreadable)}")
    if world.unknown is not None:
        return {"allowed": True, "warnings": [shorten(f"meshctx: not checked: {world.unknown}")]}
    ask = TopologyRequest(
        strategy=job.strategy,
        sizes=job.sizes,
        nnodes=world.nnodes,
        nproc_per_node=world.nproc_per_node,
        model=job.model,
    )
    too_big = (check or Limits().errors)(ask)
    if too_big:
        sources = {**job.sources, **world.sources}
        return _deny(CODE_UNREADABLE, f"meshctx: {name}: {_listed([f'{sources.get(f, f)}: {d}' for f, d in too_big])}")
    return _verdict(name, ask, world, annotations.get(FINGERPRINT))


def _verdict(name: str, ask: TopologyRequest, world: World, claimed: object) -> dict[str, object]:
    """Plan a bounded request: 403 with every problem and its fix, or allowed with the planner's warnings."""
    report = ask.validate()
    where = f"{world.nnodes} nodes × {world.nproc_per_node} processes"
    if not report.valid:
        problems = " | ".join(f"{p.code.value}: {p.message} Fix: {p.hint}" for p in report.problems[:MAX_PROBLEMS])
        return _deny(CODE_INVALID_TOPOLOGY, f"meshctx: {name} on {where} has an invalid topology: {problems}")
    if claimed is not None and report.plan is not None and report.world_sizes is None:
        actual = report.plan.fingerprint()
        if claimed != actual:
            return _deny(
                CODE_INVALID_TOPOLOGY,
                f"meshctx: {name}: {FINGERPRINT} {shown(claimed)} is not the plan of these sizes on {where} "
                f"({actual}); render the job again",
            )
    warnings = [shorten(f"meshctx {w.code.value}: {w.message}") for w in report.warnings]
    return {"allowed": True, "warnings": warnings} if warnings else {"allowed": True}


def review(body: object, check: Check | None = None) -> dict[str, object]:
    """An AdmissionReview in, its response out (same apiVersion and kind, uid copied).
    Raises ``AdmissionReviewError`` when ``body`` is not an AdmissionReview."""
    api_version, request = _check_envelope(body)
    response = {"uid": request["uid"], **decide(request, check)}
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}


# ------------------------------------------------------------------------------------------------ HTTP
class AdmissionRequestIn(Open):
    uid: Annotated[str, Field(min_length=1)]
    operation: str | None = None
    namespace: str | None = None
    object: dict[str, Any] | None = Field(
        default=None, description="The workload (TrainJob, PyTorchJob, JobSet, batch/v1 Job, Pod running torchrun)"
    )


class AdmissionReviewIn(Open):
    apiVersion: Literal["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]
    kind: Literal["AdmissionReview"]
    request: AdmissionRequestIn


assert set(AdmissionReviewIn.model_fields["apiVersion"].annotation.__args__) == set(API_VERSIONS)  # type: ignore[union-attr]


class StatusOut(BaseModel):
    code: int
    message: str


class AdmissionResponseOut(BaseModel):
    uid: str
    allowed: bool
    status: StatusOut | None = Field(default=None, description="On denial: 403 invalid topology, 422 unreadable")
    warnings: list[Annotated[str, Field(max_length=WARNING_LIMIT)]] | None = None


class AdmissionReviewOut(BaseModel):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponseOut


router = APIRouter(prefix="/v1", route_class=LongNumbersRoute)


@router.post(
    "/admission/kubernetes",
    tags=["integration"],
    response_model=None,
    responses={
        200: {"model": AdmissionReviewOut, "description": "The verdict, as an AdmissionReview (denials too)."},
        **REFUSED,
    },
    summary="Kubernetes validating admission webhook",
)
async def admission_kubernetes(body: AdmissionReviewIn, request: Request) -> JSONResponse:
    """``admission.k8s.io/v1`` (or ``v1beta1``) AdmissionReview in, the same apiVersion and kind
    back with ``response.uid`` copied. Every verdict about the *workload* is a 200 review: denied
    with ``status.code`` 403 for an invalid topology and 422 for unreadable ``meshctx.io/*``
    annotations or job fields. A body that is not an AdmissionReview at all (no ``request.uid``,
    another kind) cannot be answered with one, so it gets a 422 problem response — the API server
    then applies the webhook's ``failurePolicy`` as for any failed call."""
    settings: Settings = request.app.state.settings
    document = body.model_dump()
    # The model already checks the envelope; review() checks it again (AdmissionReviewError, the same 422).
    try:
        answer = await off_loop(request, lambda: review(document, limits_of(settings)), settings.check_deadline_s)
    except TooSlow as slow:  # answer before the API server's own timeout would apply failurePolicy anyway
        answer = {
            "apiVersion": document["apiVersion"],
            "kind": "AdmissionReview",
            "response": {
                "uid": document["request"]["uid"],
                "allowed": True,
                "warnings": [shorten(f"meshctx: not checked: {slow}")],
            },
        }
    return JSONResponse(await register_admitted(request, document, answer))  # MESHCTX_ADMISSION_REGISTER
