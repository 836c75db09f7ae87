"""Structured logs (the access log among them): one JSON object per line on stderr, ready for any log shipper."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

access_log = logging.getLogger("meshctx.access")


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


def log_access(method: str, path: str, route: str, status: int, seconds: float, client: str | None) -> None:
    if access_log.isEnabledFor(logging.INFO):
        fields = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client,
        }
        access_log.info("%s %s %d", method, path, status, extra={"fields": fields})
