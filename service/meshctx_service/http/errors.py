"""Every error leaves the service as RFC 9457 ``application/problem+json``; never as a traceback.

``ServiceError`` is the one base of every refusal the service raises (bad fields, auth, the registry): it
carries its HTTP status, a stable ``code`` (docs/problem-codes.md) and the facts a client needs. The whole
tree, each class with its status and code (defined beside what raises it, module in brackets):

    ServiceError                          500 internal_error
    ├── InvalidFields                     422 invalid_request
    │   └── PolicyRequestError            422 invalid_request  [integrations.skypilot]
    ├── Busy                              503 service_busy     [http.work]
    ├── AuthError                     401 unauthenticated  [auth.principals]
    │   ├── UnauthenticatedError          401 unauthenticated
    │   └── ForbiddenError                403 forbidden
    └── RegistryError                     500 registry_error   [registry.errors]
        ├── InvalidInputError             422 invalid_input
        ├── InvalidTopologyError          422 invalid_topology
        │   └── InvalidPlacementError     422 invalid_placement
        ├── NotFoundError                 404 not_found
        ├── ConflictError                 409 conflict
        │   ├── JobExistsError            409 job_exists
        │   ├── PreconditionFailedError   412 precondition_failed
        │   ├── IllegalTransitionError    409 illegal_transition
        │   ├── JobNotUpdatableError      409 job_not_updatable
        │   ├── CapacityError             409 capacity_exceeded
        │   ├── ClusterInUseError         409 cluster_in_use
        │   ├── FingerprintMismatchError  409 fingerprint_mismatch
        │   ├── NodesInUseError           409 nodes_in_use
        │   └── JobEndedError             409 job_ended
        └── RegistryBusyError             503 registry_busy

Never answered over HTTP: ``SettingsError`` [settings] and ``TokenConfigError`` [auth.tokens] (``ValueError``s
that stop start-up with exit status 2); ``_Retry`` [registry.store], ``_Exists`` and ``_ClusterChanged``
[registry.registering] signal, inside one registration or heartbeat, that its write must run again or take the
other path, and never leave the registry. ``tests/service/test_problems.py`` keeps this
picture complete and true.
``install_error_handlers`` installs every exception handler of the app, so each route answers the same way
whichever routers an app includes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
#: ``type`` of every problem the service raises: this prefix, then the code with dashes.
PROBLEM_TYPE = "urn:meshctx:problem:"
INVALID_REQUEST = PROBLEM_TYPE + "invalid-request"
log = logging.getLogger("meshctx.service")


def join_fields(errors: Iterable[tuple[str, str]]) -> str:
    """``field: detail; field: detail`` — the ``detail`` of a problem listing field errors."""
    return "; ".join(f"{field}: {detail}" for field, detail in errors)


def field_errors(errors: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """The ``errors`` member of a problem: ``[{"field", "detail"}]``."""
    return [{"field": field, "detail": detail} for field, detail in errors]


class ServiceError(Exception):
    """A refusal answered as problem+json: ``status``, ``type`` from ``code``, ``detail`` from ``str(err)``,
    and ``code`` plus ``extras()`` as further members."""

    status: int = 500
    code: str = "internal_error"

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE + self.code.replace("_", "-")

    def members(self) -> dict[str, object]:
        """Members added to the problem+json body besides the standard ones."""
        return {"code": self.code, **self.extras()}

    def extras(self) -> dict[str, object]:
        """The facts of the refusal (numbers, ETags, fingerprints, …)."""
        return {}

    def headers(self) -> dict[str, str] | None:
        return None


class InvalidFields(ServiceError):
    """A well-formed request the service refuses, naming each offending field (422)."""

    status = 422
    code = "invalid_request"

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__(join_fields(errors))
        self.errors = list(errors)

    def extras(self) -> dict[str, object]:
        return {"errors": field_errors(self.errors)}


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    errors: Iterable[tuple[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extras: Mapping[str, Any] | None = None,
) -> Response:
    """``extras``: further members (RFC 9457 §3.2), e.g. a conflict's numbers; they never replace the standard ones."""
    body: dict[str, Any] = {"type": type_, "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    for key, value in (extras or {}).items():
        body.setdefault(key, value)
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = field_errors(errors)
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# --------------------------------------------------------------------------------------------- wire models
class FieldErrorOut(BaseModel):
    field: str
    detail: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    #: The refusal's stable code (docs/problem-codes.md); absent only from refusals typed ``about:blank``.
    code: str | None = None
    errors: list[FieldErrorOut] | None = None


#: The refusals every route that reads a JSON body can answer, for its ``responses``.
REFUSED: dict[int | str, dict[str, Any]] = {
    400: {"model": ProblemDetails, "description": "The body could not be read as text (e.g. not UTF-8)."},
    413: {"model": ProblemDetails, "description": "Body over the size limit."},
    422: {"model": ProblemDetails, "description": "Malformed request; `errors` names each bad field."},
}


# ------------------------------------------------------------------------------------------------ handlers
def _field(loc: Sequence[Any]) -> str:
    """``("body", "sizes", "tp_size")`` → ``sizes.tp_size``; list indices as ``ranks[3]``."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    if loc and loc[0] == "body" and (not parts or isinstance(parts[0], int)):
        return "body"  # the body as a whole (e.g. invalid JSON at a character offset)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).isidentifier() or part in ("int", "str", "bool"):
            continue  # pydantic's union-member tags ("constrained-int", …) say which alternative failed
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _detail(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "json_invalid":
        return f"invalid JSON: {error.get('ctx', {}).get('error', error.get('msg', ''))}"
    return str(error.get("msg", "invalid value"))


def _validation_errors(exc: RequestValidationError) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for error in exc.errors():
        seen[(_field(error.get("loc", ())), _detail(error))] = None
    return list(seen)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    names = ", ".join(dict.fromkeys(f for f, _ in errors))
    members = {"code": InvalidFields.code, "errors": field_errors(errors)}  # the shape of every 422 (InvalidFields)
    return problem_response(
        422, f"Invalid request: {names}.", type_=INVALID_REQUEST, instance=request.url.path, extras=members
    )


async def _on_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return problem_response(
        exc.status,
        str(exc),
        type_=exc.type_uri,
        instance=request.url.path,
        headers=exc.headers(),
        extras=exc.members(),
    )


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404:
        detail = f"No route {request.method} {request.url.path}; see /docs."
    return problem_response(exc.status_code, detail, instance=request.url.path, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "Internal error; it has been logged.", instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    """Every exception handler of the app, whichever routers it includes."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
