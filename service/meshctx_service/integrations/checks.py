"""What every scheduler integration applies before it plans: the validate route's own limits
(``TopologyBody.checked_request``, so a workload can ask no more than a ``/v1/validate`` body), then the
planning itself off the event loop in a small pool with a deadline, so ``/livez`` answers throughout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from meshctx.integrations.job_sizes import bounded_int
from meshctx.integrations.limits import Check
from meshctx.plan.request import TopologyRequest

from ..http.errors import InvalidFields
from ..settings import Settings
from ..topology.schemas import TopologyBody

T = TypeVar("T")
#: At most this many checks plan at once, counting ones whose caller gave up waiting (a thread cannot be
#: stopped); the rest wait for a slot until their deadline. The event loop never waits. Planning is pure
#: Python holding the GIL, so a second thread adds no throughput, only GIL waits for the event loop (measured:
#: /livez p99 ~40 ms with one planning thread, ~120 ms with two or four, on a loaded 2-core machine).
SLOTS = threading.BoundedSemaphore(1)


def limits_of(settings: Settings) -> Check:
    """The (field, detail) pairs of a request that ``/v1/validate`` would refuse with these settings."""

    def check(request: TopologyRequest) -> list[tuple[str, str]]:
        try:
            TopologyBody.model_validate(request.to_dict()).checked_request(settings)
        except ValidationError as error:
            return [(_field(e["loc"]), e["msg"]) for e in error.errors(include_url=False)]
        except InvalidFields as error:
            return list(error.errors)
        return []

    return check


def _field(loc: tuple[int | str, ...]) -> str:
    """``("sizes", "tp_size")`` → ``sizes.tp_size``; ``("nnodes", "int")`` → ``nnodes`` (no union member tags)."""
    parts = [str(p) for p in loc]
    return ".".join(parts[:2]) if parts[:1] in (["sizes"], ["model"]) else parts[0] if parts else "body"


class TooSlow(Exception):
    """The check did not finish before its deadline."""


def _in_slot(work: Callable[[], T], deadline: float) -> T:
    if not SLOTS.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise TooSlow("every check slot stayed busy")
    try:
        return work()
    finally:
        SLOTS.release()


async def off_loop(work: Callable[[], T], deadline_s: float) -> T:
    """``work()`` in a worker thread once one of the ``SLOTS`` is free; ``TooSlow`` after ``deadline_s``
    (an unfinished thread runs to its end on its own, still holding its slot)."""
    deadline = time.monotonic() + deadline_s
    with anyio.move_on_after(deadline_s):
        return await anyio.to_thread.run_sync(_in_slot, work, deadline, abandon_on_cancel=True)
    raise TooSlow(f"the check took longer than {deadline_s:g} s")


class _LongNumbersRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_int=bounded_int)
        return self._json


class LongNumbersRoute(APIRoute):
    """A route whose JSON body may hold integers of any length: another system's document (an
    AdmissionReview) must get a verdict naming the field, not a 400 from the JSON parser."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_LongNumbersRequest(request.scope, request.receive))

        return route
