"""The service's speed tricks, all here, and the one switch that turns them off: ``MESHCTX_FAST_PATHS``
(``Settings.fast_paths``; on by default, ``off`` for plain FastAPI dispatch and uvicorn's own writes).

- ``TurnWrites``: a connection's writes made during one turn of the event loop go out as one write at the
  turn's end. uvicorn writes a response as two ``transport.write`` calls (the head, then the body) and uvloop
  sends each at once, so under load the server alternates between running one request and sending one
  response as two TCP segments, each send waking a client that then competes for the CPU; holding the writes
  lets the server run every ready request back to back and answer them together. An idle server adds one loop
  iteration to a response; more than ``FLUSH_BYTES`` held goes out at once (a streamed listing never piles
  up), and closing sends what is held first. ``http/protocol.py`` wraps each connection's transport in it.
- ``DirectRoute``: ``POST /v1/validate`` (what schedulers and admission webhooks call for every job) answered
  straight from the ASGI server, past FastAPI's middleware stack, route table walk, dependency solving and
  per-request exception wrapping, which cost more than the planning. It runs the route's own answer function
  inside the same request observation (metrics, access log, the OpenTelemetry server span) and body limit,
  and sends every error to the app's own exception handlers, so each answer is the route's, byte for byte.
  Used only while validate is open (``MESHCTX_OPEN_VALIDATE``, the default).

Each stays only while a side-by-side run still shows it paying (``bench/bench_service.py --versus
MESHCTX_FAST_PATHS=off``; figures in docs/benchmarks.md). With the switch off the answers are the same bytes
(``tests/service/test_fast_paths.py``): turn it off when a FastAPI or uvicorn upgrade breaks either trick.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import State
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .logging import AccessLog
from .metrics import Metrics
from .middleware import LimitBody, ObserveRequests


class TurnWrites(asyncio.Transport):
    """A transport whose writes go out once per event-loop turn, in order, as one write of the real transport."""

    FLUSH_BYTES = 1 << 16

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data) if not isinstance(data, bytes) else data)
        self._held_bytes += len(data)
        if self._held_bytes >= self.FLUSH_BYTES:
            self.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held (a no-op when nothing is, as when the turn's flush finds it already sent)."""
        if not self._held:
            return
        held, self._held, self._held_bytes = self._held, [], 0
        if not self._transport.is_closing():  # a lost connection drops its unsent bytes, as the transport would
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held, self._held_bytes = [], 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()

    # -- the rest is the real transport's
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class Answer(Protocol):
    """What a direct route's answer function returns: the 200's JSON body."""

    @property
    def body(self) -> bytes: ...


JSON = (b"content-type", b"application/json")


class DirectRoute:
    """``POST`` to ``router``'s route at ``path``, answered by ``answer(app.state, body)`` before FastAPI's stack
    (the app's ``__call__`` asks ``matches`` first), observed and body-limited as every other request."""

    def __init__(
        self,
        router: APIRouter,
        path: str,
        answer: Callable[[State, bytes], Awaitable[Answer]],
        *,
        max_body_bytes: int,
        metrics: Metrics,
        access_log: AccessLog | None,
    ) -> None:
        self.path = path
        self.route = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == path)
        self._answer = answer
        limited = LimitBody(self._respond, max_bytes=max_body_bytes)
        self._observed = ObserveRequests(limited, metrics=metrics, access_log=access_log)

    def matches(self, scope: Scope) -> bool:
        """Whether ``scope`` is ``POST`` to exactly this route's path (behind a proxy's ``root_path``, that
        prefix taken off, as the app's router would match it)."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        return (path[len(root) :] if root and path.startswith(root) else path) == self.path

    async def __call__(self, app: FastAPI, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        # The server span FastAPI's OpenTelemetry support makes for every route it serves, made here too (FastAPI's
        # private parts, touched only while the switch is on: a FastAPI without them makes no spans at all).
        telemetry = getattr(app, "_native_telemetry", None)
        if telemetry is not None and "fastapi.telemetry" not in scope and telemetry.enabled():
            await telemetry(app=self._traced, scope=scope, receive=receive, send=send)
        else:
            await self._observed(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        from fastapi.telemetry._api import _route_selected  # FastAPI's own span naming; no public hook exists

        _route_selected(scope=scope, path=self.path)  # names the span "POST /v1/validate", as the router would
        await self._observed(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # what the observation reads (FastAPI sets the route it was declared as)
        try:
            answer = await self._answer(scope["app"].state, await Request(scope, receive).body())
        except ClientDisconnect:
            return  # nobody to answer
        except Exception as exc:  # every error is answered by the app's own handler for it
            response = await _handled(scope, exc)
            await response(scope, receive, send)
            return
        # What the route's ``Response(answer.body, media_type="application/json")`` sends, without building one.
        length = str(len(answer.body)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", length), JSON]})
        await send({"type": "http.response.body", "body": answer.body})


async def _handled(scope: Scope, exc: Exception) -> Response:
    """The answer the app's own exception handler gives for ``exc`` (the most specific one, as Starlette picks;
    the app has one for ``Exception``, which logs it)."""
    handlers = scope["app"].exception_handlers
    handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
    response: Response = await handler(Request(scope), exc)
    return response
