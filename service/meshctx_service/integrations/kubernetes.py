"""Kubernetes validating admission (``admission.k8s.io/v1`` AdmissionReview) for training jobs, and its
webhook ``POST /v1/admission/kubernetes``.

A workload opts in with ``meshctx.io/*`` annotations on its own metadata; anything without one is
allowed untouched. The world size comes from the workload's spec (see ``world_of``); the sizes from
the annotations. Denials carry status 403 for an invalid topology (as Kubernetes' own examples and
controller-runtime do) and 422 for unreadable meshctx annotations or job fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from meshctx.launch.annotations import FINGERPRINT, MODEL_ANNOTATIONS, NPROC_PER_NODE, SIZE_ANNOTATIONS, STRATEGY
from meshctx.launch.annotations import PREFIX as ANNOTATION_PREFIX
from meshctx.plan import validate_topology

from ..http.errors import REFUSED, InvalidFields
from ..http.wire import Open
from .job_sizes import positive_int, read_job_sizes

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
WARNING_LIMIT = 120
GPU = "nvidia.com/gpu"
CODE_INVALID_TOPOLOGY = 403
CODE_UNREADABLE = 422


class AdmissionReviewError(InvalidFields):
    """The body is not an AdmissionReview, so it cannot be answered with one: a 422 problem naming each field."""


@dataclass
class World:
    """Nodes (pods), or an elastic ``"MIN:MAX"`` range, and processes per node; ``None`` = unknown."""

    nnodes: int | str | None = None
    nproc_per_node: int | None = None
    problems: list[str] = field(default_factory=list)
    unknown: str | None = None


def shorten(text: str, limit: int = WARNING_LIMIT) -> str:
    """At most ``limit`` characters, cut at a word boundary with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _get(data: object, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _pod_gpus(pod_template: object) -> int:
    """Sum of the ``nvidia.com/gpu`` limits of a pod template's containers."""
    containers = _get(pod_template, "spec", "containers")
    total = 0
    for container in containers if isinstance(containers, list) else []:
        total += positive_int(_get(container, "resources", "limits", GPU)) or 0
    return total


def _explicit_nproc(annotations: Mapping[str, object], world: World) -> int | None:
    if NPROC_PER_NODE not in annotations:
        return None
    value = positive_int(annotations[NPROC_PER_NODE])
    if value is None:
        world.problems.append(f"{NPROC_PER_NODE} must be an integer ≥ 1, got {annotations[NPROC_PER_NODE]!r}")
    return value


def _trainjob_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """``spec.trainer.numNodes × numProcPerNode``; numProcPerNode falls back to the GPU limit of
    ``resourcesPerNode``, then the ``meshctx.io/nproc-per-node`` annotation."""
    world = World()
    trainer = _get(obj, "spec", "trainer") or {}
    nodes = trainer.get("numNodes") if isinstance(trainer, Mapping) else None
    if nodes is None:
        world.unknown = "spec.trainer.numNodes is not set (the runtime decides it); set it to let meshctx check"
    elif positive_int(nodes) is None:
        world.problems.append(f"spec.trainer.numNodes must be an integer ≥ 1, got {nodes!r}")
    else:
        world.nnodes = positive_int(nodes)
    nproc = positive_int(_get(trainer, "numProcPerNode"))
    nproc = nproc or positive_int(_get(trainer, "resourcesPerNode", "limits", GPU))
    world.nproc_per_node = nproc or _explicit_nproc(annotations, world)
    if world.nproc_per_node is None and world.unknown is None and not world.problems:
        world.unknown = "spec.trainer.numProcPerNode is not a number; set it or meshctx.io/nproc-per-node"
    return world


def _pytorchjob_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """Sum of ``Master``/``Worker`` replicas × ``spec.nprocPerNode`` (else the deprecated
    ``elasticPolicy.nProcPerNode``, the Worker's GPU limit, the annotation); with an
    ``elasticPolicy`` ``minReplicas``/``maxReplicas`` the nodes are that range."""
    world = World()
    specs = _get(obj, "spec", "pytorchReplicaSpecs")
    if not isinstance(specs, Mapping) or not specs:
        world.problems.append("spec.pytorchReplicaSpecs is missing")
        return world
    nodes = 0
    for role in ("Master", "Worker"):
        if role not in specs:
            continue
        replicas = _get(specs, role, "replicas")
        count = 1 if replicas is None else positive_int(replicas)
        if count is None:
            world.problems.append(f"spec.pytorchReplicaSpecs.{role}.replicas must be an integer ≥ 1, got {replicas!r}")
        else:
            nodes += count
    elastic = _get(obj, "spec", "elasticPolicy") or {}
    low, high = positive_int(_get(elastic, "minReplicas")), positive_int(_get(elastic, "maxReplicas"))
    world.nnodes = f"{low}:{high}" if low and high and low != high else (nodes or None)
    template = _get(specs, "Worker", "template") or _get(specs, "Master", "template")
    nproc = positive_int(_get(obj, "spec", "nprocPerNode")) or positive_int(_get(elastic, "nProcPerNode"))
    world.nproc_per_node = nproc or _explicit_nproc(annotations, world) or (_pod_gpus(template) or None)
    if world.nproc_per_node is None and not world.problems:
        world.unknown = "spec.nprocPerNode is not a number and the pods request no nvidia.com/gpu"
    return world


def _jobset_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """Every replicated job whose pods request ``nvidia.com/gpu`` or carry the
    ``meshctx.io/nproc-per-node`` annotation counts ``replicas × parallelism`` pods, each running
    that annotation's (else the JobSet's, else its GPU count) processes. Other jobs (e.g. an
    initializer) are not in the world; the counted ones must agree on processes per pod."""
    world = World()
    jobs = _get(obj, "spec", "replicatedJobs")
    if not isinstance(jobs, list) or not jobs:
        world.problems.append("spec.replicatedJobs is missing")
        return world
    default = _explicit_nproc(annotations, world)
    pods, per_pod = 0, set()
    for index, job in enumerate(jobs):
        name = _get(job, "name") or f"#{index}"
        replicas = positive_int(_get(job, "replicas") or 1)
        parallelism = positive_int(_get(job, "template", "spec", "parallelism") or 1)
        if replicas is None or parallelism is None:
            world.problems.append(f"replicatedJob {name}: replicas and parallelism must be integers ≥ 1")
            continue
        pod = _get(job, "template", "spec", "template")
        pod_annotations = _get(pod, "metadata", "annotations") or {}
        own, gpus = _explicit_nproc(pod_annotations, world), _pod_gpus(pod)
        nproc = own or (default or gpus if gpus else None)
        if nproc:
            pods += replicas * parallelism
            per_pod.add(nproc)
    if len(per_pod) > 1:
        world.problems.append(f"replicated jobs run different processes per pod ({sorted(per_pod)}); meshctx needs one")
    elif per_pod:
        world.nnodes, world.nproc_per_node = pods, per_pod.pop()
    elif not world.problems:
        world.unknown = "no replicated job requests nvidia.com/gpu or sets meshctx.io/nproc-per-node"
    return world


#: (API group, kind) → how its world size is read.
WORKLOADS = {
    ("trainer.kubeflow.org", "TrainJob"): _trainjob_world,
    ("kubeflow.org", "PyTorchJob"): _pytorchjob_world,
    ("jobset.x-k8s.io", "JobSet"): _jobset_world,
}


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


def decide(request: Mapping[str, Any]) -> dict[str, object]:
    """The response fields other than ``uid`` for one AdmissionRequest."""
    obj = request.get("object")
    if request.get("operation") not in ("CREATE", "UPDATE") or not isinstance(obj, Mapping):
        return {"allowed": True}
    annotations = _get(obj, "metadata", "annotations") or {}
    if not isinstance(annotations, Mapping) or not any(str(k).startswith(ANNOTATION_PREFIX) for k in annotations):
        return {"allowed": True}
    kind = str(obj.get("kind", ""))
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    namespace = _get(obj, "metadata", "namespace") or request.get("namespace") or ""
    name = f"{kind} {namespace}/{_get(obj, 'metadata', 'name') or ''}"
    reader = WORKLOADS.get((group, kind))
    if reader is None:
        supported = ", ".join(k for _, k in WORKLOADS)
        return {
            "allowed": True,
            "warnings": [shorten(f"meshctx: cannot read the world size of {kind}; checks {supported}")],
        }
    job = read_job_sizes(annotations, STRATEGY, SIZE_ANNOTATIONS | MODEL_ANNOTATIONS)
    world = reader(obj, annotations)
    unreadable = job.errors + world.problems
    if unreadable:
        return _deny(CODE_UNREADABLE, f"meshctx: {name}: " + "; ".join(unreadable))
    if world.unknown is not None:
        return {"allowed": True, "warnings": [shorten(f"meshctx: not checked: {world.unknown}")]}
    report = validate_topology(
        job.strategy, job.sizes, nnodes=world.nnodes, nproc_per_node=world.nproc_per_node, model=job.model
    )
    where = f"{world.nnodes} nodes × {world.nproc_per_node} processes"
    if not report.valid:
        problems = " | ".join(f"{p.code.value}: {p.message} Fix: {p.hint}" for p in report.problems)
        return _deny(CODE_INVALID_TOPOLOGY, f"meshctx: {name} on {where} has an invalid topology: {problems}")
    claimed = annotations.get(FINGERPRINT)
    if claimed is not None and report.plan is not None and report.world_sizes is None:
        actual = report.plan.fingerprint()
        if claimed != actual:
            return _deny(
                CODE_INVALID_TOPOLOGY,
                f"meshctx: {name}: {FINGERPRINT} {claimed} is not the plan of these sizes on {where} ({actual}); "
                "render the job again",
            )
    warnings = [shorten(f"meshctx {w.code.value}: {w.message}") for w in report.warnings]
    return {"allowed": True, "warnings": warnings} if warnings else {"allowed": True}


def review(body: object) -> dict[str, object]:
    """An AdmissionReview in, its response out (same apiVersion and kind, uid copied).
    Raises ``AdmissionReviewError`` when ``body`` is not an AdmissionReview."""
    api_version, request = _check_envelope(body)
    response = {"uid": request["uid"], **decide(request)}
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}


# ---------------------------------------------------------------------------------------------------- HTTP
class AdmissionRequestIn(Open):
    uid: Annotated[str, Field(min_length=1)]
    operation: str | None = None
    namespace: str | None = None
    object: dict[str, Any] | None = Field(default=None, description="The workload (TrainJob, PyTorchJob, JobSet)")


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


router = APIRouter(prefix="/v1")


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
async def admission_kubernetes(body: AdmissionReviewIn) -> JSONResponse:
    """``admission.k8s.io/v1`` (or ``v1beta1``) AdmissionReview in, the same apiVersion and kind
    back with ``response.uid`` copied. Every verdict about the *workload* is a 200 review: denied
    with ``status.code`` 403 for an invalid topology and 422 for unreadable ``meshctx.io/*``
    annotations or job fields. A body that is not an AdmissionReview at all (no ``request.uid``,
    another kind) cannot be answered with one, so it gets a 422 problem response — the API server
    then applies the webhook's ``failurePolicy`` as for any failed call."""
    # The model already checks the envelope; review() checks it again (AdmissionReviewError, the same 422).
    return JSONResponse(review(body.model_dump()))
