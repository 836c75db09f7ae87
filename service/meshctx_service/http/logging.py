"""Structured logs (the access log among them): one JSON object per line on stderr, ready for any log shipper."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)  # server side only, never sent to a client
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def configure_logging(level: str) -> None:
    """Send the ``meshctx`` loggers to stderr as JSON lines (idempotent)."""
    root = logging.getLogger("meshctx")
    root.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.propagate = False


class AccessLog:
    """The access log: one JSON line per request, in the ``JsonFormatter`` shape (logger ``meshctx.access``).

    It is on by default, so it must cost next to nothing: lines are encoded with orjson (no ``LogRecord``,
    no formatter) and written to stderr's file descriptor in batches — when 64 kB are pending, or a quarter
    second after the first pending line, and at shutdown — instead of one write and flush per request."""

    FLUSH_BYTES = 1 << 16
    FLUSH_AFTER_S = 0.25

    def __init__(self, fd: int = 2) -> None:
        self.fd = fd
        self._pending: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def write(self, method: str, path: str, route: str, status: int, seconds: float, client: str | None) -> None:
        line = orjson.dumps(
            {
                "ts": self._timestamp(time.time()),
                "level": "info",
                "logger": "meshctx.access",
                "msg": f"{method} {path} {status}",
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "client": client,
            }
        )
        self._pending.append(line + b"\n")
        self._size += len(line) + 1
        if self._size >= self.FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_AFTER_S, self.flush)
            except RuntimeError:  # no event loop (called from a thread): write at once
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            data, self._pending, self._size = b"".join(self._pending), [], 0
            try:
                while data:
                    data = data[os.write(self.fd, data) :]
            except OSError:
                pass  # stderr closed: the log is lost, the request is not
