"""``POST /v1/validate`` straight from the ASGI server to the planner, past FastAPI's per-request machinery.

Validate is what schedulers and admission webhooks call for every job, and on it FastAPI's middleware stack,
route table walk, dependency solving and per-request exception wrapping cost more than the planning
(docs/benchmarks.md). The service's app (``app.ServiceApp``) hands this route to ``answer_directly`` wrapped in
the same request observation and body limit as every other route, so metrics and the access log see it as
the ``/v1/validate`` route; it answers with the route's own code (``routes.answer_validate``), and its errors go
to the app's own exception handlers, so every answer — verdicts, 422s, 413s, 503s, 500s — is the route's, byte
for byte. It is used only while validate is open (``MESHCTX_OPEN_VALIDATE``, the default): with tokens
required, the FastAPI route and its token check answer.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from .routes import answer_validate, router

PATH = "/v1/validate"
JSON = (b"content-type", b"application/json")
#: What the route puts in the scope for the observation to read (FastAPI sets the route it was declared as).
ROUTE: BaseRoute = next(route for route in router.routes if getattr(route, "path", None) == PATH)


async def answer_directly(scope: Scope, receive: Receive, send: Send) -> None:
    """``POST /v1/validate`` as an ASGI app (``ServiceApp.direct``, inside the observation and the body limit)."""
    scope["route"] = ROUTE
    try:
        verdict = await answer_validate(scope["app"].state, await Request(scope, receive).body())
    except ClientDisconnect:
        return  # nobody to answer
    except Exception as exc:  # every error is answered by the app's own handler for it
        response = await _handled(scope, exc)
        await response(scope, receive, send)
        return
    # What the route's ``Response(verdict.body, media_type="application/json")`` sends, without building one.
    length = str(len(verdict.body)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length), JSON]})
    await send({"type": "http.response.body", "body": verdict.body})


def is_direct(scope: Scope) -> bool:
    """Whether ``scope`` is a request ``answer_directly`` answers: ``POST`` to exactly ``PATH``."""
    return scope["type"] == "http" and scope["method"] == "POST" and _route_path(scope) == PATH


def _route_path(scope: Scope) -> str:
    """The path the app's router would match (behind a proxy's ``root_path``, that prefix taken off)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _handled(scope: Scope, exc: Exception) -> Response:
    """The answer the app's own exception handler gives for ``exc`` (the most specific one, as Starlette picks;
    the app has one for ``Exception``, which logs it)."""
    handlers = scope["app"].exception_handlers
    handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
    response: Response = await handler(Request(scope), exc)
    return response
