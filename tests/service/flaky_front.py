"""A real 503 for the client's retry tests: an ASGI front that answers ``503 Service Unavailable`` to the
next N requests (armed with ``POST /flaky/arm?n=N``), then passes everything to the real service app."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Receive, Scope, Send

from meshctx_service.app import create_app


class FlakyFront:
    def __init__(self) -> None:
        self.app = create_app()
        self.pending = 0
        self.served = 0

    async def _json(self, send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
        payload = json.dumps(body).encode()
        content_type = b"application/problem+json" if status >= 400 else b"application/json"
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type), *headers]}
        )
        await send({"type": "http.response.body", "body": payload})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/flaky/arm":
            self.pending = int(scope["query_string"].decode().partition("n=")[2] or 0)
            self.served = 0
            await self._json(send, 200, {"pending": self.pending}, [])
        elif scope["type"] == "http" and scope["path"] == "/flaky/stats":
            await self._json(send, 200, {"served_503": self.served}, [])
        elif scope["type"] == "http" and self.pending > 0:
            self.pending -= 1
            self.served += 1
            problem = {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": "flaky"}
            await self._json(send, 503, problem, [(b"retry-after", b"0")])
        else:
            await self.app(scope, receive, send)


def create() -> FlakyFront:
    return FlakyFront()
