"""Entity tags for jobs and ``If-Match`` matching (RFC 9110 §13.1.1: strong comparison, ``*`` = any)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping


def body_digest(body: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of what a PUT sent; equal digests make a PUT an idempotent repeat."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def make_etag(version: int, digest: str) -> str:
    """Changes with every write (version) and with the registered body (digest)."""
    return f'"{version}-{digest[:16]}"'


def etag_matches(if_match: str, current: str | None) -> bool:
    if current is None:
        return False
    candidates = [c.strip() for c in if_match.split(",")]
    return "*" in candidates or current in candidates
