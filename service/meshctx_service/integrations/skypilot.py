"""SkyPilot RESTful admin policy (``POST /v1/policy/skypilot``): check a task's ``MESHCTX_*`` envs against its
nodes and GPUs.

SkyPilot POSTs the JSON encoding of ``{"task": YAML, "skypilot_config": YAML, "request_name", ...}``
*as a JSON string* and expects the same back for ``{"task": YAML, "skypilot_config": YAML}``; a
rejection is HTTP 400 whose plain-text body it shows the user. A valid task gets
``MESHCTX_WORLD_SIZE``, ``MESHCTX_DP_SIZE`` and ``MESHCTX_FINGERPRINT`` added to its envs so the job
can attest what it built; tasks without ``MESHCTX_*`` envs pass unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body
from fastapi.responses import PlainTextResponse, Response
from pydantic import Discriminator, Field, Tag

from meshctx.launch.spec import ENV_FINGERPRINT, ENV_STRATEGY, ENV_WORLD_SIZE, SIZE_ENV
from meshctx.plan import validate_topology
from meshctx.plan.model import MODEL_FIELDS

from ..http.errors import REFUSED, InvalidFields, ProblemDetails
from ..http.wire import Open
from .job_sizes import positive_int, read_job_sizes

#: Model-shape envs, e.g. ``MESHCTX_NUM_ATTENTION_HEADS``.
MODEL_ENV = {f: "MESHCTX_" + f.upper() for f in MODEL_FIELDS}


class PolicyRejected(Exception):
    """The task is refused; the message is the plain-text body of the HTTP 400."""


class PolicyRequestError(InvalidFields):
    """The body is not a SkyPilot policy request: a 422 problem naming each field."""


def _decode(body: object) -> tuple[dict[str, Any], str, str]:
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as error:
            raise PolicyRequestError([("body", f"not JSON: {error.msg}")]) from None
    if not isinstance(body, Mapping):
        raise PolicyRequestError([("body", "expected the SkyPilot user request object")])
    errors = [(k, "expected a YAML string") for k in ("task", "skypilot_config") if not isinstance(body.get(k), str)]
    if errors:
        raise PolicyRequestError(errors)
    try:
        task = yaml.safe_load(body["task"]) or {}
    except yaml.YAMLError as error:
        raise PolicyRequestError([("task", f"not YAML: {error}")]) from None
    if not isinstance(task, dict):
        raise PolicyRequestError([("task", "expected a YAML mapping")])
    return task, body["task"], body["skypilot_config"]


def _gpu_counts(accelerators: object) -> set[int]:
    """``"H100:8"``, ``{"H100": 8}`` or a list of either → the GPU counts named."""
    if isinstance(accelerators, str):
        count = accelerators.partition(":")[2]
        return {positive_int(count) or 0} if count else {1}
    if isinstance(accelerators, Mapping):
        return {positive_int(v) or 0 for v in accelerators.values()}
    if isinstance(accelerators, (list, tuple, set)):
        return set().union(*(_gpu_counts(a) for a in accelerators)) if accelerators else set()
    return set()


def _gpus_per_node(resources: object) -> set[int]:
    if isinstance(resources, list):
        return set().union(*(_gpus_per_node(r) for r in resources)) if resources else set()
    if not isinstance(resources, Mapping):
        return set()
    counts = _gpu_counts(resources.get("accelerators"))
    for key in ("any_of", "ordered"):
        counts |= _gpus_per_node(resources.get(key))
    return counts


def apply_policy(body: object) -> str:
    """The response body (a JSON string, as SkyPilot's ``MutatedUserRequest.encode`` makes);
    raises ``PolicyRejected`` (→ 400 text) or ``PolicyRequestError`` (→ 422)."""
    task, task_text, config_text = _decode(body)
    envs = task.get("envs") or {}
    if not isinstance(envs, dict) or not any(str(k).startswith("MESHCTX_") for k in envs):
        return json.dumps({"task": task_text, "skypilot_config": config_text})
    job = read_job_sizes(envs, ENV_STRATEGY, SIZE_ENV | MODEL_ENV)
    problems = list(job.errors)
    nodes = positive_int(task.get("num_nodes", 1))
    if nodes is None:
        problems.append(f"num_nodes must be an integer ≥ 1, got {task.get('num_nodes')!r}")
    counts = _gpus_per_node(task.get("resources"))
    if len(counts) != 1 or 0 in counts:
        problems.append("resources.accelerators must name one GPU count per node, e.g. H100:8")
    if problems:
        raise PolicyRejected("meshctx: " + "; ".join(problems))
    nproc = counts.pop()
    report = validate_topology(job.strategy, job.sizes, nnodes=nodes, nproc_per_node=nproc, model=job.model)
    if not report.valid or report.plan is None:
        details = " | ".join(f"{p.code.value}: {p.message} Fix: {p.hint}" for p in report.problems)
        raise PolicyRejected(f"meshctx: {nodes} nodes × {nproc} GPUs: invalid topology: {details}")
    plan = report.plan
    claimed = envs.get(ENV_FINGERPRINT)
    if claimed is not None and claimed != plan.fingerprint():
        raise PolicyRejected(
            f"meshctx: {ENV_FINGERPRINT} {claimed} is not the plan of these sizes on {nodes} × {nproc} "
            f"({plan.fingerprint()}); render the task again"
        )
    envs |= {
        ENV_WORLD_SIZE: str(plan.world_size),
        SIZE_ENV["dp_size"]: str(plan.sizes.dp),
        ENV_FINGERPRINT: plan.fingerprint(),
    }
    task["envs"] = envs
    return json.dumps({"task": yaml.safe_dump(task, sort_keys=False), "skypilot_config": config_text})


# ---------------------------------------------------------------------------------------------------- HTTP
class SkyPilotRequestIn(Open):
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


router = APIRouter(prefix="/v1")


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
    return Response(json.dumps(mutated), media_type="application/json")
