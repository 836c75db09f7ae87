"""Every error leaves the service as RFC 9457 ``application/problem+json``; never as a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

PROBLEM_JSON = "application/problem+json"
INVALID_REQUEST = "urn:meshctx:problem:invalid-request"
log = logging.getLogger("meshctx.service")


class InvalidFields(Exception):
    """A well-formed request the service refuses, naming each offending field (422)."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in errors))
        self.errors = list(errors)


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
        body["errors"] = [{"field": field, "detail": text} for field, text in errors]
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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
    return problem_response(
        422, f"Invalid request: {names}.", type_=INVALID_REQUEST, instance=request.url.path, errors=errors
    )


async def _on_invalid_fields(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidFields)
    return problem_response(422, str(exc), type_=INVALID_REQUEST, instance=request.url.path, errors=exc.errors)


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
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(InvalidFields, _on_invalid_fields)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
