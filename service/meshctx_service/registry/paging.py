"""Opaque keyset cursors. Listings are ordered by name (job id, cluster name), which is unique per tenant,
so a page boundary is just the last name seen: pages never skip or repeat a row that existed throughout."""

from __future__ import annotations

import base64
import json

from .errors import InvalidInputError
from .names import is_name

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        if is_name(after):  # every page boundary is a job id or cluster name: nothing else reaches the query
            return str(after)
    except (ValueError, KeyError, TypeError, RecursionError):
        pass
    raise InvalidInputError([("cursor", "not a cursor from a previous page; omit it to start from the beginning.")])


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError([("limit", f"{limit} is out of range; use 1 to {MAX_LIMIT}.")])
    return limit
