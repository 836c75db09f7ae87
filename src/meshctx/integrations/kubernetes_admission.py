"""Kubernetes validating admission (``admission.k8s.io/v1`` AdmissionReview) for training jobs: the one
implementation, torch-free. The service's webhook ``POST /v1/admission/kubernetes`` calls ``decide`` on the
AdmissionRequest it has read; ``review`` answers a whole AdmissionReview in process.

A workload opts in with ``meshctx.io/*`` annotations on its own metadata; anything without one is
allowed untouched. The world comes from the workload's spec (``meshctx.integrations.workloads``), the
sizes from the annotations, and both pass the limits (``Check``; the service passes its ``/v1/validate`` ones)
before any planning. Only CREATE and an UPDATE that changes the topology are checked: deletion-time updates
(finalizers), Kueue's unsuspend and status changes of an admitted job always pass. Denials carry status 403 for
an invalid topology (as Kubernetes' own examples and controller-runtime do) and 422 for unreadable or oversized
``meshctx.io/*`` annotations or job fields.

An opted-in workload that meshctx cannot check — its world size is only known at run time, its kind is not
one meshctx reads, or the check cannot finish in time — is *unchecked*: denied (422, or 503 for a check that ran
out of time) with a message saying so, unless the site chose ``unchecked="allow"``
(``MESHCTX_ADMISSION_UNCHECKED=allow``: admitted with a ``not checked`` warning). The gate never opens by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..errors import FieldErrors
from ..launch.annotations import FINGERPRINT, MODEL_ANNOTATIONS, SIZE_ANNOTATIONS, STRATEGY
from ..launch.annotations import PREFIX as ANNOTATION_PREFIX
from ..plan.request import TopologyRequest
from .job_sizes import read_job_sizes, shown
from .limits import Check, Limits
from .workloads import MAX_PROBLEMS, WORKLOADS, World, get, workload_request

ApiVersion = Literal["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]
API_VERSIONS: tuple[str, ...] = get_args(ApiVersion)
WARNING_LIMIT = 120
CODE_INVALID_TOPOLOGY = 403
CODE_UNREADABLE = 422
#: A body that could not be parsed at all (but still names its review).
CODE_MALFORMED = 400
#: A check that could not finish in time (the API server's own message says the webhook refused it).
CODE_UNFINISHED = 503
Unchecked = Literal["deny", "allow"]
#: How ``/metrics`` counts a decision.
Verdict = Literal["allowed", "denied", "unchecked"]
#: Longest workload name quoted in a message (a hostile body may carry a megabyte of one).
NAME_LIMIT = 120
log = logging.getLogger("meshctx.admission")


class AdmissionReviewError(FieldErrors):
    """The body is not an AdmissionReview, so it cannot be answered with one; ``errors`` names each field."""


def shorten(text: str, limit: int = WARNING_LIMIT) -> str:
    """At most ``limit`` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


@dataclass(frozen=True, slots=True)
class Workload:
    """An opted-in workload that was checked and admitted: what registering it as a job needs."""

    #: The topology it asks for (sizes and model from its annotations, world from its spec).
    request: TopologyRequest
    kind: str
    namespace: str
    name: str
    #: ``metadata.uid``: the job's key once registered (``None`` when the object carries none).
    uid: str | None
    #: A CREATE that is not a dry run: the workload will exist once admitted.
    created: bool


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one AdmissionRequest. ``status`` (code, message) on a denial; ``unchecked`` when the
    workload could not be checked (denied or admitted as ``unchecked`` says); ``workload`` when it was checked
    and admitted."""

    allowed: bool
    status: tuple[int, str] | None = None
    warnings: tuple[str, ...] = ()
    unchecked: bool = False
    workload: Workload | None = None

    @property
    def verdict(self) -> Verdict:
        return "unchecked" if self.unchecked else "allowed" if self.allowed else "denied"

    def response(self, uid: str) -> dict[str, Any]:
        """The AdmissionResponse: ``uid``, ``allowed``, then ``status`` or ``warnings`` when there are any."""
        answer: dict[str, Any] = {"uid": uid, "allowed": self.allowed}
        if self.status is not None:
            code, message = self.status
            answer["status"] = {"code": code, "message": message}
        if self.warnings:
            answer["warnings"] = list(self.warnings)
        return answer


ALLOWED = Decision(allowed=True)


def deny(code: int, message: str) -> Decision:
    return Decision(allowed=False, status=(code, message))


def answer(api_version: str, uid: str, decision: Decision) -> dict[str, Any]:
    """The AdmissionReview answering the request ``uid``: same ``apiVersion`` and kind, ``decision``'s response."""
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": decision.response(uid)}


def check_envelope(body: object) -> tuple[str, str, Mapping[str, Any]]:
    """(apiVersion, request uid, AdmissionRequest) of an AdmissionReview; ``AdmissionReviewError`` naming every
    field that makes ``body`` none."""
    if not isinstance(body, Mapping):
        raise AdmissionReviewError([("body", "expected an AdmissionReview JSON object")])
    errors: list[tuple[str, str]] = []
    api_version = body.get("apiVersion")
    if api_version not in API_VERSIONS:
        errors.append(("apiVersion", f"expected one of {', '.join(API_VERSIONS)}, got {api_version!r}"))
    if body.get("kind") != "AdmissionReview":
        errors.append(("kind", f"expected AdmissionReview, got {body.get('kind')!r}"))
    request = body.get("request")
    uid = None
    if not isinstance(request, Mapping):
        errors.append(("request", "expected the AdmissionRequest object"))
    else:
        uid = request.get("uid")
        if not isinstance(uid, str) or not uid:
            errors.append(("request.uid", "expected a non-empty string"))
        if request.get("object") is not None and not isinstance(request.get("object"), Mapping):
            errors.append(("request.object", "expected an object or null"))
    if errors or not isinstance(request, Mapping) or not isinstance(uid, str):  # (the last two: already named)
        raise AdmissionReviewError(errors)
    return str(api_version), uid, request


def not_checked(name: str, reason: str, unchecked: Unchecked, code: int = CODE_UNREADABLE) -> Decision:
    """The decision on an opted-in workload meshctx could not check: denied saying so (``deny``), or admitted
    with a warning (``allow``)."""
    if unchecked == "allow":
        log.warning("admitted unchecked: %s: %s", name, reason)
        return Decision(allowed=True, warnings=(shorten(f"meshctx: not checked: {reason}"),), unchecked=True)
    message = (
        f"meshctx: {name}: not admitted because it could not be checked: {reason} (MESHCTX_ADMISSION_UNCHECKED=deny)"
    )
    return Decision(allowed=False, status=(code, message), unchecked=True)


def unfinished(request: Mapping[str, Any], reason: str, unchecked: Unchecked) -> Decision:
    """The decision on a request whose check could not finish (``reason``: why), answered before the API
    server's own timeout would apply the webhook's ``failurePolicy`` anyway."""
    obj = request.get("object") or {}
    name = shorten(f"{get(obj, 'kind') or ''} {get(obj, 'metadata', 'name') or ''}", NAME_LIMIT)
    return not_checked(name, reason, unchecked, CODE_UNFINISHED)


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


def not_ours(request: Mapping[str, Any]) -> bool:
    """Allowed without any work: not a CREATE/UPDATE of an object, a deletion-time update, or a workload that
    did not opt in (the service answers these on its event loop, so even a saturated gate never refuses
    workloads not its own)."""
    obj = request.get("object")
    if request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, Mapping) or _deleting(request, obj):
        return True
    annotations = get(obj, "metadata", "annotations")
    return annotations is None or (isinstance(annotations, Mapping) and not _opted_in(annotations))


def decide(request: Mapping[str, Any], check: Check | None = None, unchecked: Unchecked = "deny") -> Decision:
    """The decision on one AdmissionRequest (the review's ``request``). ``check`` bounds the topology before
    any planning (the service passes its ``/v1/validate`` limits; default: ``Limits()``); ``unchecked``
    answers an opted-in workload that cannot be checked (``not_checked``).

    Args:
        request: the AdmissionRequest, as decoded JSON (``uid``, ``operation``, ``object``, ``oldObject``, …).
        check: the limit check; every field it names denies the workload with 422 before any planning.
        unchecked: ``"deny"`` or ``"allow"`` a workload meshctx cannot check.

    Returns:
        The ``Decision``; an admitted, checked workload's ``workload`` carries its topology and identity.
    """
    obj = request.get("object")
    if not isinstance(obj, Mapping) or not_ours(request):
        return ALLOWED
    annotations = get(obj, "metadata", "annotations")
    group, kind = _kind(obj)
    namespace = get(obj, "metadata", "namespace") or request.get("namespace") or ""
    name = shorten(f"{kind} {namespace}/{get(obj, 'metadata', 'name') or ''}", NAME_LIMIT)
    if not isinstance(annotations, Mapping):
        return deny(
            CODE_UNREADABLE, f"meshctx: {name}: metadata.annotations must be a mapping, got {shown(annotations)}"
        )
    if _unchanged_update(request, obj):
        return ALLOWED
    reader = WORKLOADS.get((group, kind))
    if reader is None:
        supported = ", ".join(k for _, k in WORKLOADS)
        return not_checked(name, f"cannot read the world size of {shown(kind)}; checks {supported}", unchecked)
    job = read_job_sizes(annotations, STRATEGY, SIZE_ANNOTATIONS | MODEL_ANNOTATIONS)
    world = reader(obj, annotations)
    unreadable = job.errors + world.problems
    if unreadable:
        return deny(CODE_UNREADABLE, f"meshctx: {name}: {_listed(unreadable)}")
    if world.unknown is not None:
        return not_checked(name, world.unknown, unchecked)
    ask = workload_request(job, world)
    too_big = (check or Limits().errors)(ask)
    if too_big:
        sources = {**job.sources, **world.sources}
        return deny(CODE_UNREADABLE, f"meshctx: {name}: {_listed([f'{sources.get(f, f)}: {d}' for f, d in too_big])}")
    decision = _verdict(name, ask, world, annotations.get(FINGERPRINT))
    if not decision.allowed:
        return decision
    uid = get(obj, "metadata", "uid")
    workload = Workload(
        request=ask,
        kind=kind,
        namespace=str(namespace),
        name=str(get(obj, "metadata", "name") or request.get("name") or ""),
        uid=uid if isinstance(uid, str) and uid else None,
        created=request.get("operation") == "CREATE" and not request.get("dryRun"),
    )
    return Decision(allowed=True, warnings=decision.warnings, workload=workload)


def _verdict(name: str, ask: TopologyRequest, world: World, claimed: object) -> Decision:
    """Plan a bounded request: 403 with every problem and its fix, or allowed with the planner's warnings."""
    report = ask.validate()
    where = f"{world.nnodes} nodes × {world.nproc_per_node} processes"
    if not report.valid:
        problems = " | ".join(f"{p.code.value}: {p.message} Fix: {p.hint}" for p in report.problems[:MAX_PROBLEMS])
        return deny(CODE_INVALID_TOPOLOGY, f"meshctx: {name} on {where} has an invalid topology: {problems}")
    if claimed is not None and report.plan is not None and report.world_sizes is None:
        actual = report.plan.fingerprint()
        if claimed != actual:
            return deny(
                CODE_INVALID_TOPOLOGY,
                f"meshctx: {name}: {FINGERPRINT} {shown(claimed)} is not the plan of these sizes on {where} "
                f"({actual}); render the job again",
            )
    return Decision(
        allowed=True, warnings=tuple(shorten(f"meshctx {w.code.value}: {w.message}") for w in report.warnings)
    )


def review(body: object, check: Check | None = None, unchecked: Unchecked = "deny") -> dict[str, Any]:
    """An AdmissionReview in, its response out (same apiVersion and kind, uid copied).

    Args:
        body: the AdmissionReview, as decoded JSON.
        check: the limit check (``decide``).
        unchecked: ``"deny"`` or ``"allow"`` a workload meshctx cannot check.

    Returns:
        The answering AdmissionReview, as JSON-ready values.

    Raises:
        AdmissionReviewError: ``body`` is not an AdmissionReview (each field named).
    """
    api_version, uid, request = check_envelope(body)
    return answer(api_version, uid, decide(request, check, unchecked))
