"""``POST /v1/place`` bodies read without holding the GIL for long: a 16,384-node topology is most of a 2.5 MB
body, and pydantic-core validates it in one call that keeps every other thread (the event loop included) waiting
60–90 ms. Here orjson parses the bytes (a few ms), the topology's nodes and a listed allocation are checked in
plain Python (which lets other threads run every few milliseconds), and pydantic validates only the small rest,
so the schema (``PlaceBody``) still defines every other field and its errors.

Errors name the field as pydantic would (``topology.nodes[3].gpus``), at most ``MAX_ERRORS`` of them.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from meshctx.place.topology import TIER_NAMES

from ..http.errors import InvalidFields
from .schemas import PlaceBody

MAX_ERRORS = 20
NAME_MAX = 253
LABEL_MAX = 317
GPUS_MAX = 1024
TIERS = TIER_NAMES[1:]
NODE_KEYS = frozenset({"name", "gpus", *TIERS})
LABEL_TIERS = frozenset(TIER_NAMES)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, detail: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append((field, detail))

    def full(self) -> bool:
        return len(self.items) >= MAX_ERRORS


def _name(value: object, field: str, errors: _Errors, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        errors.add(field, f"Input should be a valid string, got {_short(value)}")
    elif len(value) > NAME_MAX:
        errors.add(field, f"String should have at most {NAME_MAX} characters")
    elif not value and not allow_empty:
        errors.add(field, "String should have at least 1 character")


def _nodes(entries: list[Any], errors: _Errors) -> list[dict[str, Any]]:
    """Each node as ``NodeBody`` would check it; the dicts as given (they are ``Topology.from_dict``'s input)."""
    if not entries:
        errors.add("topology.nodes", "List should have at least 1 item after validation, not 0")
    for i, entry in enumerate(entries):
        if errors.full():
            break
        where = f"topology.nodes[{i}]"
        if not isinstance(entry, dict):
            errors.add(where, f"Input should be an object with name and gpus, got {_short(entry)}")
            continue
        for key in entry.keys() - NODE_KEYS:
            errors.add(f"{where}.{key}" if str(key).isidentifier() else where, "unknown field")
        if "name" not in entry:
            errors.add(f"{where}.name", "Field required")
        else:
            _name(entry["name"], f"{where}.name", errors)
        gpus = entry.get("gpus")
        if "gpus" not in entry:
            errors.add(f"{where}.gpus", "Field required")
        elif type(gpus) is not int:
            errors.add(f"{where}.gpus", f"Input should be a valid integer, got {_short(gpus)}")
        elif not 1 <= gpus <= GPUS_MAX:
            errors.add(f"{where}.gpus", f"Input should be between 1 and {GPUS_MAX}, got {gpus}")
        for tier in TIERS:
            value = entry.get(tier)
            if value is not None:
                _name(value, f"{where}.{tier}", errors, allow_empty=True)
    return entries


def _labels(labels: object, errors: _Errors) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        errors.add("topology.labels", "Input should be a valid dictionary")
        return
    for tier, key in labels.items():
        if tier not in LABEL_TIERS:
            errors.add("topology.labels", f"{_short(tier)} is not a tier: node, nvlink_domain, leaf or spine")
        elif not isinstance(key, str) or len(key) > LABEL_MAX:
            errors.add(f"topology.labels.{tier}", f"a node label key of at most {LABEL_MAX} characters is required")


def parse_place_body(raw: bytes) -> tuple[PlaceBody, dict[str, Any] | None]:
    """The body as ``PlaceBody`` (without ``topology`` when that was checked here) and the inline topology as
    ``Topology.from_dict`` reads it, or ``None`` when there is none. 422 naming each bad field."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidFields([("body", f"invalid JSON: {str(error)[:200]}")]) from None
    topology: dict[str, Any] | None = None
    allocation: list[Any] | None = None
    errors = _Errors()
    if isinstance(data, dict):
        inline = data.get("topology")
        if isinstance(inline, dict) and isinstance(inline.get("nodes"), list):
            del data["topology"]
            for key in inline.keys() - {"nodes", "labels"}:
                errors.add(f"topology.{key}" if str(key).isidentifier() else "topology", "unknown field")
            _nodes(inline["nodes"], errors)
            _labels(inline.get("labels"), errors)
            topology = {"nodes": inline["nodes"], "labels": inline.get("labels") or {}}
        if isinstance(data.get("nodes"), list):
            allocation = data.pop("nodes")
            for i, name in enumerate(allocation):
                if errors.full():
                    break
                _name(name, f"nodes[{i}]", errors)
    try:
        body = PlaceBody.model_validate_json(orjson.dumps(data))  # small: the big parts are out
    except ValidationError as exc:
        found = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        if errors.items:  # the hand-checked fields first; pydantic's follow once those are fixed
            raise InvalidFields(errors.items) from None
        raise RequestValidationError(found) from None
    if errors.items:
        raise InvalidFields(errors.items)
    if allocation is not None:
        body = body.model_copy(update={"nodes": allocation})
    return body, topology
