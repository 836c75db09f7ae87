"""Kubernetes validating admission (``admission.k8s.io/v1`` AdmissionReview) for training jobs, and its
webhook ``POST /v1/admission/kubernetes``.

A workload opts in with ``meshctx.io/*`` annotations on its own metadata; anything without one is
allowed untouched. The world comes from the workload's spec (``meshctx.integrations.workloads``), the
sizes from the annotations, and both pass the ``/v1/validate`` limits before any planning. Only CREATE
and an UPDATE that changes the topology are checked: deletion-time updates (finalizers), Kueue's
unsuspend and status changes of an admitted job always pass. Denials carry status 403 for an invalid
topology (as Kubernetes' own examples and controller-runtime do) and 422 for unreadable or oversized
``meshctx.io/*`` annotations or job fields.

An opted-in workload that meshctx cannot check — its world size is only known at run time, its kind is not
one meshctx reads, or the check cannot finish before ``MESHCTX_CHECK_DEADLINE_S`` — is *unchecked*: denied
(422, or 503 for a check that ran out of time) with a message saying so, unless the site chose
``MESHCTX_ADMISSION_UNCHECKED=allow`` (admitted with a ``not checked`` warning). The gate never opens by accident.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from meshctx.integrations.job_sizes import read_job_sizes, shown
from meshctx.integrations.limits import Check, Limits
from meshctx.integrations.workloads import MAX_PROBLEMS, WORKLOADS, World, get, workload_request
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
#: A body that could not be parsed at all (but still names its review).
CODE_MALFORMED = 400
#: A check that could not finish in time (the API server's own message says the webhook refused it).
CODE_UNFINISHED = 503
Unchecked = Literal["deny", "allow"]
#: Marks a response whose workload was not checked; ``judge`` takes it out and reports ``unchecked``.
_UNCHECKED = "meshctx-unchecked"
log = logging.getLogger("meshctx.admission")
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


def not_checked(name: str, reason: str, unchecked: Unchecked, code: int = CODE_UNREADABLE) -> dict[str, object]:
    """The answer for an opted-in workload meshctx could not check: denied saying so (``deny``), or admitted
    with a warning (``allow``)."""
    if unchecked == "allow":
        log.warning("admitted unchecked: %s: %s", name, reason)
        return {"allowed": True, "warnings": [shorten(f"meshctx: not checked: {reason}")], _UNCHECKED: True}
    message = (
        f"meshctx: {name}: not admitted because it could not be checked: {reason} (MESHCTX_ADMISSION_UNCHECKED=deny)"
    )
    return {**_deny(code, message), _UNCHECKED: True}


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


def _not_ours(request: Mapping[str, Any]) -> bool:
    """Allowed without any work: not a CREATE/UPDATE of an object, a deletion-time update, or a workload that
    did not opt in (answered on the event loop, so even a saturated gate never refuses workloads not its own)."""
    obj = request.get("object")
    if request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, Mapping) or _deleting(request, obj):
        return True
    annotations = get(obj, "metadata", "annotations")
    return annotations is None or (isinstance(annotations, Mapping) and not _opted_in(annotations))


def decide(request: Mapping[str, Any], check: Check | None = None, unchecked: Unchecked = "deny") -> dict[str, object]:
    """The response fields other than ``uid`` for one AdmissionRequest; ``check`` bounds the topology
    before any planning (the service passes its ``/v1/validate`` limits; default: ``Limits()``); ``unchecked``
    answers an opted-in workload that cannot be checked (``not_checked``)."""
    if _not_ours(request):
        return {"allowed": True}
    obj: Mapping[str, Any] = request["object"]
    annotations = get(obj, "metadata", "annotations")
    group, kind = _kind(obj)
    namespace = get(obj, "metadata", "namespace") or request.get("namespace") or ""
    name = shorten(f"{kind} {namespace}/{get(obj, 'metadata', 'name') or ''}", NAME_LIMIT)
    if not isinstance(annotations, Mapping):
        return _deny(
            CODE_UNREADABLE, f"meshctx: {name}: metadata.annotations must be a mapping, got {shown(annotations)}"
        )
    if _unchanged_update(request, obj):
        return {"allowed": True}
    reader = WORKLOADS.get((group, kind))
    if reader is None:
        supported = ", ".join(k for _, k in WORKLOADS)
        return not_checked(name, f"cannot read the world size of {shown(kind)}; checks {supported}", unchecked)
    job = read_job_sizes(annotations, STRATEGY, SIZE_ANNOTATIONS | MODEL_ANNOTATIONS)
    world = reader(obj, annotations)
    unreadable = job.errors + world.problems
    if unreadable:
        return _deny(CODE_UNREADABLE, f"meshctx: {name}: {_listed(unreadable)}")
    if world.unknown is not None:
        return not_checked(name, world.unknown, unchecked)
    ask = workload_request(job, world)
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


def judge(body: object, check: Check | None = None, unchecked: Unchecked = "deny") -> tuple[dict[str, object], str]:
    """``review`` and its verdict as counted in ``/metrics``: ``allowed``, ``denied`` or ``unchecked``."""
    api_version, request = _check_envelope(body)
    response = {"uid": request["uid"], **decide(request, check, unchecked)}
    verdict = "unchecked" if response.pop(_UNCHECKED, False) else "allowed" if response["allowed"] else "denied"
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}, verdict


def review(body: object, check: Check | None = None, unchecked: Unchecked = "deny") -> dict[str, object]:
    """An AdmissionReview in, its response out (same apiVersion and kind, uid copied).
    Raises ``AdmissionReviewError`` when ``body`` is not an AdmissionReview."""
    return judge(body, check, unchecked)[0]


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
    status: StatusOut | None = Field(
        default=None,
        description="On denial: 403 invalid topology, 422 unreadable or uncheckable, 503 check unfinished in time",
    )
    warnings: list[Annotated[str, Field(max_length=WARNING_LIMIT)]] | None = None


class AdmissionReviewOut(BaseModel):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponseOut


#: Where a body that is no readable AdmissionReview still names itself: the API server writes ``apiVersion`` and
#: then ``request`` with ``uid`` first (bounded gaps: a megabyte of anything else is never scanned twice).
_API_VERSION = re.compile(rb'"apiVersion"\s*:\s*"(admission\.k8s\.io/v1(?:beta1)?)"')
_UID = re.compile(rb'"request"\s*:\s*\{[^{}]{0,2000}?"uid"\s*:\s*"([A-Za-z0-9._:-]{1,128})"')


def _identified(body: bytes) -> tuple[str, str] | None:
    """(apiVersion, request uid) of a body that may not parse: enough to answer it with a review."""
    version, uid = _API_VERSION.search(body), _UID.search(body)
    if version is None or uid is None:
        return None
    return version.group(1).decode(), uid.group(1).decode()


class ReviewRoute(LongNumbersRoute):
    """The webhook's route: a body the API server sent that cannot be read (nested too deep for the parser,
    malformed JSON, a field of the wrong type) is still answered with a review denying it — a problem response
    would count as a failed call, and ``failurePolicy: Ignore`` would admit the workload unchecked."""

    def refused(self, error: Exception, body: bytes) -> Response | None:
        found = _identified(body)
        if found is None:
            return None
        api_version, uid = found
        if isinstance(error, RequestValidationError):
            fields = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors()[:MAX_PROBLEMS]
            )
            code, reason = CODE_UNREADABLE, f"the AdmissionReview is malformed: {fields}"
        else:
            code, reason = CODE_MALFORMED, "the AdmissionReview could not be parsed (nested too deep, or not JSON)"
        answer = {"uid": uid, **_deny(code, shorten(f"meshctx: not admitted: {reason}", 1000))}
        return JSONResponse({"apiVersion": api_version, "kind": "AdmissionReview", "response": answer})


router = APIRouter(prefix="/v1", route_class=ReviewRoute)


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
    annotations or job fields, 503 for a check that could not finish in time (unless
    ``MESHCTX_ADMISSION_UNCHECKED=allow``). A body that is not an AdmissionReview at all (no
    ``request.uid``, another kind) cannot be answered with one, so it gets a 422 problem response — the API
    server then applies the webhook's ``failurePolicy`` as for any failed call."""
    settings: Settings = request.app.state.settings
    document = body.model_dump()
    policy = settings.admission_unchecked
    # The model already checks the envelope; judge() checks it again (AdmissionReviewError, the same 422).
    if _not_ours(document["request"]):
        request.app.state.metrics.observe_admission("kubernetes", "allowed")
        return JSONResponse(judge(document)[0])
    try:
        answer, verdict = await off_loop(
            request, lambda: judge(document, limits_of(settings), policy), settings.check_deadline_s
        )
    except TooSlow as slow:  # answer before the API server's own timeout would apply failurePolicy anyway
        obj = document["request"].get("object") or {}
        name = shorten(f"{get(obj, 'kind') or ''} {get(obj, 'metadata', 'name') or ''}", NAME_LIMIT)
        response = {"uid": document["request"]["uid"], **not_checked(name, str(slow), policy, CODE_UNFINISHED)}
        response.pop(_UNCHECKED)
        answer, verdict = (
            {"apiVersion": document["apiVersion"], "kind": "AdmissionReview", "response": response},
            "unchecked",
        )
    request.app.state.metrics.observe_admission("kubernetes", verdict)
    if verdict == "allowed":  # checked and valid: registered when MESHCTX_ADMISSION_REGISTER says so
        answer = await register_admitted(request, document, answer)
    return JSONResponse(answer)
