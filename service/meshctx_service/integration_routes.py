"""Scheduler integration over HTTP: launcher renderings, the Kubernetes admission webhook and the
SkyPilot admin policy. Each endpoint wraps one torch-free module (``meshctx.launch``,
``admission``, ``skypilot_policy``); this module only adapts them to HTTP.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from meshctx.launch import TARGETS, LaunchError, LaunchSpec, validate_and_render

from .admission import API_VERSIONS, AdmissionReviewError, review
from .errors import InvalidFields
from .metrics import Metrics
from .routes import REFUSED
from .schemas import Int, ModelBody, NodeRange, ProblemDetails, SizesBody, TopologyBody, ValidationReportOut, _Strict
from .skypilot_policy import PolicyRejected, PolicyRequestError, apply_policy

router = APIRouter(prefix="/v1")

Target = Literal["torchrun", "slurm", "trainjob", "kueue", "skypilot"]
assert set(Target.__args__) == set(TARGETS), "keep the path enum in step with meshctx.launch.TARGETS"  # type: ignore[attr-defined]
Name = Annotated[str, Field(min_length=1, max_length=253)]


# ------------------------------------------------------------------------------------------------ render
class RenderBody(_Strict):
    """A topology on ``nnodes`` × ``nproc_per_node`` (the validate request's fields, without
    ``world_size``/``ranks``/``cluster``: launchers count nodes) plus how the job is started."""

    strategy: Annotated[str, Field(max_length=64, examples=["fsdp2"])]
    nnodes: Int | NodeRange
    nproc_per_node: Int
    sizes: SizesBody = Field(default_factory=SizesBody)
    model: ModelBody | None = None
    job_name: Name = "meshctx-job"
    command: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(min_length=1, max_length=256)] = Field(
        default_factory=lambda: ["train.py"], description="The training script and its arguments"
    )
    rdzv_endpoint: Name | None = Field(default=None, description="HOST:PORT (torchrun, multi-node)")
    rdzv_backend: Name = "c10d"
    rdzv_id: Name | None = None
    accelerator: Name | None = Field(default=None, description="GPU type, e.g. H100 (SkyPilot; Slurm gres)")
    image: Name | None = Field(default=None, description="container image (TrainJob)")
    runtime: Name = Field(default="torch-distributed", description="TrainJob runtimeRef name")
    queue: Name | None = Field(default=None, description="Kueue LocalQueue (TrainJob label)")
    slice_topology: Name | None = Field(default=None, description="Kueue: node label of each group's domain")
    slice_group: Literal["model", "stage"] = "model"
    podset_topology: Name | None = Field(default=None, description="Kueue: node label of the whole job's domain")
    podset_topology_mode: Literal["required", "preferred"] = "required"

    def topology(self) -> TopologyBody:
        return TopologyBody(
            strategy=self.strategy,
            nnodes=self.nnodes,
            nproc_per_node=self.nproc_per_node,
            sizes=self.sizes,
            model=self.model,
        )

    def launch(self) -> LaunchSpec:
        fields = self.model_dump(exclude={"strategy", "sizes", "model", "command"})
        return LaunchSpec(command=tuple(self.command), **fields)


class RenderingOut(BaseModel):
    target: str
    data: dict[str, Any] = Field(description="The document in the target's own field names")
    text: str = Field(description="What to paste: a shell script, YAML or annotations")
    env: dict[str, str] = Field(description="The MESHCTX_* environment the job gets")
    notes: list[str]


class RenderReportOut(ValidationReportOut):
    rendering: RenderingOut | None = Field(description="null when the topology is invalid")


RENDER_EXAMPLES: dict[str, dict[str, Any]] = {
    "torchrun": {
        "summary": "torchrun on 4 nodes of 8 GPUs, tp 8 × pp 2",
        "value": {
            "strategy": "fsdp2",
            "nnodes": 4,
            "nproc_per_node": 8,
            "sizes": {"tp_size": 8, "pp_size": 2},
            "rdzv_endpoint": "head:29500",
            "command": ["train.py", "--config", "llm.yaml"],
        },
    },
    "kueue": {
        "summary": "Kueue slices keeping each tp group of 8 in one rack",
        "value": {
            "strategy": "fsdp2",
            "nnodes": 8,
            "nproc_per_node": 4,
            "sizes": {"tp_size": 8},
            "slice_topology": "cloud.provider.com/topology-rack",
        },
    },
}


@router.post(
    "/render/{target}",
    tags=["integration"],
    response_model=None,
    responses={
        200: {"model": RenderReportOut, "description": "The validate report plus the rendering (null if invalid)."},
        **REFUSED,
    },
    summary="Launcher settings for a valid topology",
)
async def render(
    target: Annotated[Target, Path(description="Launcher to render for")],
    body: Annotated[RenderBody, Body(openapi_examples=RENDER_EXAMPLES)],
    request: Request,
) -> JSONResponse:
    """What ``meshctx render TARGET --json`` prints: the topology is validated over every node count
    first; an invalid one is a 200 with ``valid: false`` and ``rendering: null`` (as ``/v1/validate``),
    and the launch settings are only checked for a valid one. Launch settings the target cannot
    express (no rendezvous endpoint for a multi-node torchrun, no ``slice_topology`` for Kueue,
    an elastic range for a TrainJob, …) are a 422 naming each field."""
    ask = body.topology().checked_request(request.app.state.settings)
    try:
        report, rendering = validate_and_render(target, ask.strategy, ask.sizes, body.launch(), model=ask.model)
    except LaunchError as error:
        raise InvalidFields(error.errors) from None
    metrics: Metrics = request.app.state.metrics
    metrics.observe_report("render", report)
    return JSONResponse(report.to_dict() | {"rendering": rendering.to_dict() if rendering is not None else None})


# --------------------------------------------------------------------------------------------- admission
class _Open(BaseModel):
    """Kubernetes objects carry many fields meshctx does not read; keep them all."""

    model_config = ConfigDict(extra="allow")


class AdmissionRequestIn(_Open):
    uid: Annotated[str, Field(min_length=1)]
    operation: str | None = None
    namespace: str | None = None
    object: dict[str, Any] | None = Field(default=None, description="The workload (TrainJob, PyTorchJob, JobSet)")


class AdmissionReviewIn(_Open):
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
    warnings: list[Annotated[str, Field(max_length=120)]] | None = None


class AdmissionReviewOut(BaseModel):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponseOut


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
    try:
        return JSONResponse(review(body.model_dump()))
    except AdmissionReviewError as error:  # the model already checks the envelope; kept in step with review()
        raise InvalidFields(error.errors) from None


# ------------------------------------------------------------------------------------------------ SkyPilot
class SkyPilotRequestIn(_Open):
    """SkyPilot's ``UserRequest`` (``request_name``, ``request_options``, ``at_client_side`` and
    ``user`` are passed along unread)."""

    task: str = Field(description="The task as YAML")
    skypilot_config: str = Field(description="The SkyPilot config as YAML")


def _encoding(body: object) -> str | None:
    """Which form the body takes; the tags are not identifiers, so error fields read ``task``, not a union tag."""
    return "as-string" if isinstance(body, str) else "as-object" if isinstance(body, dict) else None


SkyPilotBody = Annotated[
    Annotated[str, Tag("as-string")] | Annotated[SkyPilotRequestIn, Tag("as-object")],
    Discriminator(_encoding, custom_error_type="invalid_body", custom_error_message="expected a JSON string or object"),
]


@router.post(
    "/policy/skypilot",
    tags=["integration"],
    response_model=None,
    responses={
        200: {
            "description": '`MutatedUserRequest.encode()`: a JSON string holding `{"task", "skypilot_config"}`.',
            "content": {"application/json": {"schema": {"type": "string"}}},
        },
        400: {
            "description": "Rejected: the plain-text reason SkyPilot shows the user (or a problem document "
            "when the body could not be read as text).",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}},
            },
        },
        413: REFUSED[413],
        422: {"model": ProblemDetails, "description": "Not a SkyPilot user request; `errors` names each field."},
    },
    summary="SkyPilot RESTful admin policy",
)
async def policy_skypilot(
    body: Annotated[
        SkyPilotBody,
        Body(description="`UserRequest.encode()` — the JSON object, JSON-encoded once more as a string."),
    ],
) -> Response:
    """Set ``admin_policy: https://HOST/v1/policy/skypilot`` in SkyPilot's config. Tasks with
    ``MESHCTX_*`` envs are checked against their ``num_nodes`` and ``resources.accelerators``; a
    valid one gets ``MESHCTX_WORLD_SIZE``, ``MESHCTX_DP_SIZE`` and ``MESHCTX_FINGERPRINT`` added,
    others pass unchanged. A rejection is a 400 with a plain-text reason, as SkyPilot expects."""
    try:
        mutated = apply_policy(body if isinstance(body, str) else body.model_dump())
    except PolicyRejected as rejected:
        return PlainTextResponse(str(rejected), status_code=400)
    except PolicyRequestError as error:
        raise InvalidFields(error.errors) from None
    return Response(json.dumps(mutated), media_type="application/json")
