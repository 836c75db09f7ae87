"""SkyPilot RESTful admin policy (``POST /v1/policy/skypilot``): check a task's ``MESHCTX_*`` envs against its
nodes and GPUs.

SkyPilot POSTs the JSON encoding of ``{"task": YAML, "skypilot_config": YAML, "request_name", ...}``
*as a JSON string* and expects the same back for ``{"task": YAML, "skypilot_config": YAML}``; a
rejection is HTTP 400 whose plain-text body it shows the user. A valid task gets
``MESHCTX_WORLD_SIZE``, ``MESHCTX_DP_SIZE`` and ``MESHCTX_FINGERPRINT`` added to its envs so the job
can attest what it built; tasks without ``MESHCTX_*`` envs pass unchanged. The checks themselves are
``meshctx.integrations.skypilot_policy``, the same code the in-process ``sky.AdminPolicy`` runs; this
module only speaks SkyPilot's HTTP encoding and applies this service's limits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import Discriminator, Field, Tag

from meshctx.integrations import safe_yaml
from meshctx.integrations.job_sizes import bounded_int
from meshctx.integrations.kubernetes_admission import shorten
from meshctx.integrations.limits import Check
from meshctx.integrations.skypilot_policy import TaskRejected, check_task

from ..http.errors import REFUSED, InvalidFields, ProblemDetails, problem_response
from ..http.wire import Open
from ..http.work import Busy, off_loop
from ..settings import Settings
from .checks import LongNumbersRoute, not_finished

log = logging.getLogger("meshctx.admission")


class PolicyRequestError(InvalidFields):
    """The body is not a SkyPilot policy request: a 422 problem naming each field."""


def _decode(body: object) -> tuple[dict[str, Any], str, str]:
    if isinstance(body, str):
        try:
            body = json.loads(body, parse_int=bounded_int)
        except json.JSONDecodeError as error:
            raise PolicyRequestError([("body", f"not JSON: {error.msg}")]) from None
        except RecursionError:
            raise PolicyRequestError([("body", "nested too deep")]) from None
    if not isinstance(body, Mapping):
        raise PolicyRequestError([("body", "expected the SkyPilot user request object")])
    errors = [(k, "expected a YAML string") for k in ("task", "skypilot_config") if not isinstance(body.get(k), str)]
    if errors:
        raise PolicyRequestError(errors)
    try:
        task = safe_yaml.load(body["task"]) or {}
    except yaml.YAMLError as error:  # aliases and deep nesting refused too (meshctx.integrations.safe_yaml)
        raise PolicyRequestError([("task", f"not YAML: {shorten(str(error), 300)}")]) from None
    if not isinstance(task, dict):
        raise PolicyRequestError([("task", "expected a YAML mapping")])
    return task, body["task"], body["skypilot_config"]


def apply_policy(body: object, check: Check | None = None) -> str:
    """The response body (a JSON string, as SkyPilot's ``MutatedUserRequest.encode`` makes); raises
    ``TaskRejected`` (→ 400 text) or ``PolicyRequestError`` (→ 422). ``check`` bounds the task's topology
    before any planning (the service passes its ``/v1/validate`` limits)."""
    task, task_text, config_text = _decode(body)
    added = check_task(task, check)
    if added is None:
        return json.dumps({"task": task_text, "skypilot_config": config_text})
    task["envs"] = {**task["envs"], **added}
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


router = APIRouter(prefix="/v1", route_class=LongNumbersRoute)


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
        503: {"model": ProblemDetails, "description": "The check did not finish in time; SkyPilot fails the request."},
    },
    summary="SkyPilot RESTful admin policy",
)
async def policy_skypilot(
    body: Annotated[
        SkyPilotBody,
        Body(description="`UserRequest.encode()` — the JSON object, JSON-encoded once more as a string."),
    ],
    request: Request,
) -> Response:
    """Set ``admin_policy: https://HOST/v1/policy/skypilot`` in SkyPilot's config. Tasks with
    ``MESHCTX_*`` envs are checked against their ``num_nodes`` and ``resources.accelerators``; a
    valid one gets ``MESHCTX_WORLD_SIZE``, ``MESHCTX_DP_SIZE`` and ``MESHCTX_FINGERPRINT`` added,
    others pass unchanged. A rejection is a 400 with a plain-text reason, as SkyPilot expects."""
    settings: Settings = request.app.state.settings
    metrics = request.app.state.metrics
    document = body if isinstance(body, str) else body.model_dump()
    deadline_s = settings.check_deadline_s
    try:
        mutated = await off_loop(
            request.app.state, apply_policy, document, settings.limits.errors, pool="admission", deadline_s=deadline_s
        )
    except TaskRejected as rejected:
        metrics.observe_admission("skypilot", "denied")
        return PlainTextResponse(str(rejected), status_code=400)
    except PolicyRequestError:
        metrics.observe_admission("skypilot", "denied")
        raise
    except Busy as busy:  # SkyPilot fails the request, as when the policy URL is down (docs/skypilot.md)
        slow = not_finished(busy, deadline_s)
        metrics.observe_admission("skypilot", "unchecked")
        unchanged = _unchanged(document) if settings.admission_unchecked == "allow" else None
        if unchanged is not None:
            log.warning("SkyPilot task passed unchecked: %s", slow)
            return Response(json.dumps(unchanged), media_type="application/json")
        return problem_response(
            503, f"meshctx could not check the task, so it is refused: {slow}; retry (MESHCTX_ADMISSION_UNCHECKED=deny)"
        )
    metrics.observe_admission("skypilot", "allowed")
    return Response(json.dumps(mutated), media_type="application/json")


def _unchanged(document: object) -> str | None:
    """The request's task and config passed back untouched (``MESHCTX_ADMISSION_UNCHECKED=allow``); ``None`` when
    the body cannot even be read as a user request (then it is refused like any unchecked task)."""
    try:
        body = json.loads(document) if isinstance(document, str) else document
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("task", "skypilot_config")):
        return None
    return json.dumps({"task": body["task"], "skypilot_config": body["skypilot_config"]})
