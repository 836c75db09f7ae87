"""How the service reads JSON bodies: its own requests strictly, other systems' envelopes openly.

Every request model derives from ``Strict`` (unknown fields and non-integers are malformed, 422) or, for
documents another system owns (Kubernetes' AdmissionReview, SkyPilot's user request), from ``Open``, which
keeps the fields meshctx does not read.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from meshctx.integrations.limits import MAX_INT

Int = Annotated[StrictInt, Field(le=MAX_INT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Open(BaseModel):
    """Kubernetes and SkyPilot objects carry many fields meshctx does not read; keep them all."""

    model_config = ConfigDict(extra="allow")


M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, model: type[M]) -> M:
    """``model`` parsed straight from the body's bytes by pydantic-core: every malformed body — bad JSON,
    bytes that are not UTF-8, a number of any length — is the same 422 naming the field, on every route."""
    return parse_body(await request.body(), model)


def parse_body(body: bytes, model: type[M]) -> M:
    """``read_body`` once the bytes are in."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_input=False)]
        raise RequestValidationError(errors) from None
