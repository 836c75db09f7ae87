"""JSON responses encoded with orjson: a plan at W = 131072 encodes several times faster than with ``json``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
