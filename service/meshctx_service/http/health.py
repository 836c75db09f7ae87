"""Liveness, readiness and Prometheus metrics for the orchestrator."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from .errors import ProblemDetails, problem_response
from .metrics import Metrics

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/livez", response_model=None, responses={200: {"model": Health}})
async def livez() -> JSONResponse:
    """The process answers; a constant JSON reply (also the baseline of ``bench/bench_service.py``)."""
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    response_model=None,
    responses={200: {"model": Health}, 503: {"model": ProblemDetails, "description": "Not ready yet."}},
)
async def readyz(request: Request) -> Response:
    """Ready once start-up has planned a topology end to end (imports and caches are warm)."""
    if not request.app.state.ready:
        return problem_response(503, "Starting up.", instance="/readyz", headers={"Retry-After": "1"})
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text."}},
)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)
