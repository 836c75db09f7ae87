"""``POST /v1/validate`` and ``POST /v1/layout``: the planner behind HTTP, answering the CLI's wire format."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from meshctx.plan import ValidationReport
from meshctx.plan.request import TopologyRequest

from ..http.errors import REFUSED, InvalidFields
from ..http.metrics import Metrics, findings
from ..http.responses import FastJSONResponse
from ..http.wire import MAX_INT
from ..settings import Settings
from .schemas import EXAMPLES, PlanOut, RankViewOut, TopologyBody, ValidationReportOut

router = APIRouter(prefix="/v1", tags=["topology"])

TopologyInput = Annotated[TopologyBody, Body(openapi_examples=EXAMPLES)]
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


async def _read_topology(request: Request) -> TopologyBody:
    try:
        return TopologyBody.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _check(body: TopologyBody, request: Request, endpoint: str) -> ValidationReport:
    report = body.checked_request(request.app.state.settings).validate()
    metrics: Metrics = request.app.state.metrics
    metrics.observe_report(endpoint, report)
    return report


@dataclass(frozen=True)
class _Verdict:
    """A validation's encoded answer and what the metrics count of it."""

    body: bytes
    valid: bool
    findings: tuple[tuple[str, str], ...]


def _verdict(topology: TopologyRequest) -> _Verdict:
    """Planning is a pure function of the request, so identical requests (admission re-checks, the viewer's
    live validation, retries) share one encoded answer. Requests listing ``ranks`` are not kept: their keys
    alone may hold a rank list of the whole world."""
    return _fresh_verdict(topology) if topology.ranks is not None else _remembered_verdict(topology)


def _fresh_verdict(topology: TopologyRequest) -> _Verdict:
    report = topology.validate()
    return _Verdict(orjson.dumps(report.to_dict()), report.valid, findings(report))


_remembered_verdict = lru_cache(maxsize=256)(_fresh_verdict)  # 256 answers of a few kB each


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
    verdict = _verdict((await _read_topology(request)).checked_request(request.app.state.settings))
    metrics: Metrics = request.app.state.metrics
    metrics.observe_verdict("validate", verdict.valid, verdict.findings)
    return Response(verdict.body, media_type="application/json")


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
)
async def layout(
    body: TopologyInput,
    request: Request,
    groups: Annotated[bool, Query(description="List every group of every axis.")] = False,
    rank: Annotated[
        int | None, Query(le=MAX_INT, description="Show this global rank's coordinates and groups (wins over groups).")
    ] = None,
) -> FastJSONResponse:
    """Like ``meshctx layout``: an invalid topology gets the validation report (200, ``valid: false``) because
    there is no layout to show; a rank outside the mesh is a 422 naming ``rank``."""
    report = _check(body, request, "layout")
    plan = report.plan
    if plan is None:
        return FastJSONResponse(report.to_dict())
    if rank is not None:
        try:
            return FastJSONResponse(plan.rank_view(rank))
        except ValueError as error:
            raise InvalidFields([("rank", str(error))]) from None
    settings: Settings = request.app.state.settings
    if groups and plan.world_size > settings.max_listed_world_size:
        raise InvalidFields(
            [
                (
                    "groups",
                    f"listing every group of {plan.world_size} ranks is refused above "
                    f"{settings.max_listed_world_size} ranks; ask for one rank's view with rank=N",
                )
            ]
        )
    return FastJSONResponse(plan.to_dict(groups=groups))
