"""``POST /v1/validate`` straight from the middleware to the planner, past FastAPI's per-route machinery.

Validate is what schedulers and admission webhooks call for every job, and on it FastAPI's route table walk,
dependency solving and per-request exception wrapping cost more than the planning (docs/benchmarks.md). This
middleware sits inside the body limit and the request observation (metrics and access log see it as the
``/v1/validate`` route) and answers with the route's own code (``routes.answer_validate``); its errors go to
the app's own exception handlers, so every answer — verdicts, 422s, 413s, 503s — is the route's, byte for byte.
It is installed only while validate is open (``MESHCTX_OPEN_VALIDATE``, the default): with tokens required,
the FastAPI route and its token check answer.
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ..http.errors import ServiceError
from .routes import answer_validate, router

PATH = "/v1/validate"
#: What the route puts in the scope for the observation to read (FastAPI sets the route it was declared as).
ROUTE: BaseRoute = next(route for route in router.routes if getattr(route, "path", None) == PATH)

#: What the app's exception handlers turn into answers; anything else goes on to the server-error middleware,
#: exactly as it would from the route.
HANDLED = (ServiceError, RequestValidationError, HTTPException)


class DirectValidate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        scope["route"] = ROUTE
        try:
            response = await answer_validate(scope["app"].state, await _body(receive))
        except HANDLED as exc:
            response = await _handled(scope, exc)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the app's router would match (behind a proxy's ``root_path``, that prefix taken off)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _body(receive: Receive) -> bytes:
    """The whole request body, as ``Request.body()`` reads it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _handled(scope: Scope, exc: Exception) -> Response:
    """The answer the app's own exception handler gives for ``exc`` (the most specific one, as Starlette picks)."""
    handlers = scope["app"].exception_handlers
    handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
    response: Response = await handler(Request(scope), exc)
    return response
