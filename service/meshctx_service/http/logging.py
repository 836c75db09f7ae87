"""Structured logs (the access log among them): one JSON object per line on stderr, ready for any log shipper."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
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
    no formatter) and handed over in batches — when 64 kB are pending, or a quarter second after the first
    pending line, and at shutdown — instead of one write and flush per request. A batch is written by a thread of
    its own, never on the event loop: a log reader that stops draining the pipe (a paused collector, a full pipe)
    blocks that thread only. At most ``QUEUE_BATCHES`` batches wait for it; past that a batch is dropped and its
    lines counted (``dropped``, and ``meshctx_access_log_dropped_lines_total`` in ``/metrics``)."""

    FLUSH_BYTES = 1 << 16
    FLUSH_AFTER_S = 0.25
    QUEUE_BATCHES = 16

    def __init__(self, fd: int = 2, on_drop: Callable[[int], None] | None = None) -> None:
        self.fd = fd
        self.dropped = 0
        self._on_drop = on_drop
        self._pending: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""
        self._batches: queue.Queue[tuple[bytes, int] | None] = queue.Queue(self.QUEUE_BATCHES)
        self._writer: threading.Thread | None = None

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
            except RuntimeError:  # no event loop (called from a thread): hand it over at once
                self.flush()

    def flush(self) -> None:
        """Hand the pending lines to the writer thread (never blocks: a full queue drops the batch, counted)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        lines = len(self._pending)
        data, self._pending, self._size = b"".join(self._pending), [], 0
        if self._writer is None:
            self._writer = threading.Thread(target=self._drain, name="meshctx-access-log", daemon=True)
            self._writer.start()
        try:
            self._batches.put_nowait((data, lines))
        except queue.Full:
            self.dropped += lines
            if self._on_drop is not None:
                self._on_drop(lines)

    def sync(self, timeout_s: float = 2.0) -> None:
        """Flush, and wait up to ``timeout_s`` until the writer thread has written everything handed to it."""
        self.flush()
        deadline = time.monotonic() + timeout_s
        while self._batches.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.002)

    def close(self, timeout_s: float = 2.0) -> None:
        """Flush, and give the writer thread up to ``timeout_s`` to write what it holds (shutdown)."""
        self.flush()
        if self._writer is not None:
            with contextlib.suppress(queue.Full):
                self._batches.put(None, timeout=timeout_s)
            self._writer.join(timeout_s)

    def _drain(self) -> None:
        while (batch := self._batches.get()) is not None:
            data = batch[0]
            try:
                while data:
                    data = data[os.write(self.fd, data) :]
            except OSError:
                pass  # stderr closed: the log is lost, the requests are not
            finally:
                self._batches.task_done()
