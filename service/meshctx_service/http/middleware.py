"""The app's ASGI middleware: a body size limit (413 before anything parses the body) and request observation
(timing, metrics and the access log of every request)."""

from __future__ import annotations

import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import problem_response
from .logging import AccessLog
from .memory import trim_soon
from .metrics import Metrics


class LimitBody:
    """Refuse request bodies over ``max_bytes`` (413), by their declared length or as they arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> str:
        return f"Request body exceeds {self.max_bytes} bytes (MESHCTX_MAX_BODY_BYTES)."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await problem_response(413, self._too_large(), instance=scope["path"])(scope, receive, send)
                return
        received = 0

        async def receive_limited() -> Message:
            # A body without (or lying about) its length is counted as it arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, receive_limited, send)


class ObserveRequests:
    """Time every request, count it in the metrics and write its access-log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            seconds = time.perf_counter() - start
            trim_soon(seconds)  # a long request may have grown the heap: give the free pages back
            route = scope.get("route")
            # The route template, not the path, so unknown URLs cannot blow up the label set.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], template, status, seconds)
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.write(
                    scope["method"], scope["path"], template, status, seconds, client[0] if client else None
                )
