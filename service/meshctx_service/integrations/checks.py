"""What every scheduler integration applies before it plans: the validate route's own limits
(``Settings.limits.errors``, the library's ``Limits`` checked on the ``TopologyRequest`` the integration read, so
a workload can ask no more than a ``/v1/validate`` body), then the planning itself off the event loop with a
deadline (``MESHCTX_CHECK_DEADLINE_S``), so ``/livez`` answers throughout — on admission's own pool
(``off_loop(..., pool="admission")``), which no other route can take: a slow ``/v1/place`` or ``groups=true``
layout never keeps the gate from checking a workload."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException  # what FastAPI raises for a body it cannot parse

from meshctx.integrations.job_sizes import bounded_int

from ..http.work import Busy


def not_finished(busy: Busy, deadline_s: float) -> str:
    """Why a check did not finish (``busy``: admission's pool refused it, or it ran past ``deadline_s``), as the
    routes answer it in their schedulers' own form (``MESHCTX_ADMISSION_UNCHECKED`` says how); an unfinished
    thread runs to its end on its own, still counted."""
    if busy.timed_out:
        return f"the check took longer than {deadline_s:g} s (MESHCTX_CHECK_DEADLINE_S)"
    return "every admission thread was busy (MESHCTX_ADMISSION_THREADS, MESHCTX_ADMISSION_QUEUE)"


class _LongNumbersRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_int=bounded_int)
        return self._json


class LongNumbersRoute(APIRoute):
    """A route whose JSON body may hold integers of any length: another system's document (an
    AdmissionReview) must get a verdict naming the field, not a 400 from the JSON parser."""

    def refused(self, error: Exception, body: bytes) -> Response | None:
        """The answer to a body FastAPI could not read or validate (``error``: its 400 or 422), or ``None`` for
        FastAPI's own problem response. The webhook answers an AdmissionReview it can still identify."""
        return None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            long_numbers = _LongNumbersRequest(request.scope, request.receive)
            try:
                return await handler(long_numbers)
            except (HTTPException, RequestValidationError) as error:
                answer = self.refused(error, getattr(long_numbers, "_body", b""))
                if answer is None:
                    raise
                return answer

        return route
