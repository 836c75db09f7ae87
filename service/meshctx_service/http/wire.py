"""How the service reads JSON bodies: its own requests strictly, other systems' envelopes openly.

Every request model derives from ``Strict`` (unknown fields and non-integers are malformed, 422) or, for
documents another system owns (Kubernetes' AdmissionReview, SkyPilot's user request), from ``Open``, which
keeps the fields meshctx does not read.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

#: Any integer the planner is asked about stays below this, so no request can make it factor huge numbers.
MAX_INT = 2**31 - 1
Int = Annotated[StrictInt, Field(le=MAX_INT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Open(BaseModel):
    """Kubernetes and SkyPilot objects carry many fields meshctx does not read; keep them all."""

    model_config = ConfigDict(extra="allow")
