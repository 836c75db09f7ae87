"""The app's ASGI middleware: a body size limit (413 before anything parses the body) and request observation
(timing, metrics and the access log of every request)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import problem_response
from .logging import AccessLog
from .memory import trim_soon
from .metrics import Metrics


class LimitBody:
    """Refuse request bodies over ``max_bytes`` (413), by their declared length or as they arrive; ``per_path``
    gives some paths a limit (and the setting that names it) of their own."""

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: Mapping[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})

    def _too_large(self, limit: int, setting: str) -> str:
        return f"Request body exceeds {limit} bytes ({setting})."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.per_path.get(scope["path"], (self.max_bytes, "MESHCTX_MAX_BODY_BYTES"))
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                message = self._too_large(limit, setting)
                await problem_response(413, message, instance=scope["path"])(scope, receive, send)
                return
        received = 0

        async def receive_limited() -> Message:
            # A body without (or lying about) its length is counted as it arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, self._too_large(limit, setting))
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
