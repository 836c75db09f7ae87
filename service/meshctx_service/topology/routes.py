"""``POST /v1/validate`` and ``POST /v1/layout``: the planner behind HTTP, answering the CLI's wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.datastructures import State

from meshctx.plan import AxisLayout, MeshPlan, ValidationReport
from meshctx.plan.request import TopologyRequest

from ..http.errors import REFUSED, InvalidFields
from ..http.metrics import Metrics, findings
from ..http.wire import MAX_INT, parse_body, read_body
from ..http.work import off_loop
from ..settings import Settings
from .offload import heavy
from .schemas import EXAMPLES, PlanOut, RankViewOut, TopologyBody, ValidationReportOut

router = APIRouter(prefix="/v1", tags=["topology"])

# /v1/validate is the hot path: it parses its body straight from bytes (pydantic-core's JSON parser) instead of
# through FastAPI's dependency machinery, and documents the same body by reference.
VALIDATE_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/TopologyBody"}, "examples": EXAMPLES}
        },
    }
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@dataclass(frozen=True)
class Verdict:
    """A validation's encoded answer and what the metrics count of it."""

    body: bytes
    valid: bool
    findings: tuple[tuple[str, str], ...]


class RecentAnswers:
    """The app's memo of recent verdicts, by request body. Planning is a pure function of the body (and the
    app's settings), so identical requests — admission re-checks, the viewer's live validation, retries — share
    one encoded answer and skip even the parsing. Bounded without per-request eviction: two generations of at
    most ``GENERATION`` answers each, the younger becoming the older when full (a hit in the older is moved
    back). Bodies over ``BODY_BYTES`` (rank lists) and answers over ``ANSWER_BYTES`` (an elastic range's report
    of every node count, hundreds of kB) are not kept: at most ~2.5 MB in all. Used from the event loop only."""

    GENERATION = 128
    BODY_BYTES = 2048
    ANSWER_BYTES = 8192

    def __init__(self) -> None:
        self._young: dict[bytes, Verdict] = {}
        self._old: dict[bytes, Verdict] = {}

    def get(self, body: bytes) -> Verdict | None:
        found = self._young.get(body)
        if found is None:
            found = self._old.pop(body, None)
            if found is not None:
                self.keep(body, found)
        return found

    def keep(self, body: bytes, verdict: Verdict) -> None:
        if len(body) > self.BODY_BYTES or len(verdict.body) > self.ANSWER_BYTES:
            return
        if len(self._young) >= self.GENERATION:
            self._old, self._young = self._young, {}
        self._young[body] = verdict


def _fresh_verdict(topology: TopologyRequest) -> Verdict:
    report = topology.validate()
    return Verdict(report.to_json(), report.valid, findings(report))


@router.post(
    "/validate",
    response_model=None,
    responses={200: {"model": ValidationReportOut, "description": "The verdict (invalid is a 200 too)."}, **REFUSED},
    summary="Check a topology and return its compact layout",
    openapi_extra=VALIDATE_BODY_DOC,
)
async def validate(request: Request) -> Response:
    """Every problem at once, warnings, the nearest valid sizes when invalid, and the compact plan when valid.

    A well-formed request for an invalid topology is answered 200 with ``valid: false``."""
    verdict = await answer_validate(request.app.state, await request.body())
    return Response(verdict.body, media_type="application/json")


async def answer_validate(state: State, body: bytes) -> Verdict:
    """``POST /v1/validate`` once its body is read: the route above and the direct path (``http/fast_paths.py``) both
    answer with this (a 200 whose body is ``verdict.body``), or raise what the app's handlers answer."""
    answers: RecentAnswers = state.answers
    verdict = answers.get(body)
    if verdict is None:
        settings: Settings = state.settings
        topology = parse_body(body, TopologyBody).checked_request(settings)
        verdict = await off_loop(state, _fresh_verdict, topology, inline=not heavy(topology))
        answers.keep(body, verdict)
    metrics: Metrics = state.metrics
    metrics.observe_verdict("validate", verdict.valid, verdict.findings)
    return verdict


@router.post(
    "/layout",
    response_model=None,
    responses={
        200: {
            "model": PlanOut | RankViewOut | ValidationReportOut,
            "description": "The plan (compact, or with every group), one rank's view, or — for an invalid "
            "topology — the same report `/v1/validate` gives (recognize it by its `valid` key).",
        },
        **REFUSED,
    },
    summary="The full layout of a topology, every group, or one rank's view",
    openapi_extra=VALIDATE_BODY_DOC,
)
async def layout(
    request: Request,
    groups: Annotated[bool, Query(description="List every group of every axis.")] = False,
    rank: Annotated[
        int | None, Query(le=MAX_INT, description="Show this global rank's coordinates and groups (wins over groups).")
    ] = None,
) -> Response:
    """Like ``meshctx layout``: an invalid topology gets the validation report (200, ``valid: false``) because
    there is no layout to show; a rank outside the mesh is a 422 naming ``rank``. A rank view costs
    O(number of axes); every group is streamed, off the event loop."""
    settings = _settings(request)
    topology = (await read_body(request, TopologyBody)).checked_request(settings)
    state = request.app.state
    report, encoded = await off_loop(state, partial(_layout, rank, groups), topology, inline=not heavy(topology))
    metrics: Metrics = request.app.state.metrics
    metrics.observe_report("layout", report)
    if isinstance(encoded, str):
        raise InvalidFields([("rank", encoded)])
    if encoded is not None:
        return Response(encoded, media_type="application/json")
    assert report.plan is not None
    refusal = settings.limits.listing_error(report.plan.world_size)
    if refusal is not None:
        raise InvalidFields([refusal])
    return StreamingResponse(_listing(state, report.plan), media_type="application/json")


def _layout(rank: int | None, groups: bool, topology: TopologyRequest) -> tuple[ValidationReport, bytes | str | None]:
    """The report and the encoded answer (built where the planning ran: off the loop for heavy requests); the
    answer is ``None`` for a listing (streamed), or why ``rank`` is not in the mesh."""
    report = topology.validate()
    plan = report.plan
    if plan is None:
        return report, report.to_json()
    if rank is not None:
        try:
            return report, orjson.dumps(plan.rank_view(rank))
        except ValueError as error:
            return report, str(error)
    return report, None if groups else plan.to_json()


#: Ranks encoded per chunk of a streamed listing: each chunk is one short task on the work pool.
LISTING_CHUNK_RANKS = 1 << 13


async def _listing(state: State, plan: MeshPlan) -> AsyncIterator[bytes]:
    """``plan.to_dict(groups=True)`` as JSON, a chunk at a time, each chunk encoded on the work pool: no list
    of every rank is ever built, so a listing at the largest allowed world leaves memory where it was."""
    head = plan.to_json()
    yield head[:-1] + b',"groups":{'
    for index, name in enumerate(plan.layouts):
        layout = plan.layout(name)
        groups = plan.world_size // layout.size
        step = max(1, LISTING_CHUNK_RANKS // layout.size)
        yield (b"," if index else b"") + orjson.dumps(name) + b":["
        for first in range(0, groups, step):
            yield await off_loop(state, _encode_groups, plan, layout, first, min(first + step, groups), admitted=True)
        yield b"]"
    yield b"}}"


def _encode_groups(plan: MeshPlan, layout: AxisLayout, first: int, last: int) -> bytes:
    """Groups ``first`` to ``last - 1`` of ``layout`` (ordered by their first position) as JSON list items."""
    offsets = layout.offsets()
    bases = layout.complement(plan.world_size)
    modes = sorted(zip(bases.sizes, bases.strides), key=lambda mode: mode[1])  # smallest stride first
    rank_of = plan.ranks.__getitem__ if plan.ranks is not None else None
    items = []
    for index in range(first, last):
        base = 0
        for size, stride in modes:  # the index-th base in ascending order
            index, digit = divmod(index, size)
            base += digit * stride
        members = map(base.__add__, offsets)  # C-level iteration: no Python call per rank
        items.append("[" + ",".join(map(str, members if rank_of is None else map(rank_of, members))) + "]")
    return (b"," if first else b"") + ",".join(items).encode()
