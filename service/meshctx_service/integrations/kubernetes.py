"""The Kubernetes validating admission webhook ``POST /v1/admission/kubernetes``: it reads the AdmissionReview,
bounds the work and serializes the answer; every decision about the workload is the library's
(``meshctx.integrations.kubernetes_admission``), made on admission's own threads within
``MESHCTX_CHECK_DEADLINE_S`` (a check that cannot finish is answered as ``MESHCTX_ADMISSION_UNCHECKED`` says).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from meshctx.integrations.kubernetes_admission import (
    ALLOWED,
    CODE_MALFORMED,
    CODE_UNREADABLE,
    WARNING_LIMIT,
    ApiVersion,
    answer,
    decide,
    deny,
    not_ours,
    shorten,
    unfinished,
)
from meshctx.integrations.workloads import MAX_PROBLEMS

from ..http.errors import REFUSED
from ..http.wire import Open
from ..http.work import Busy, off_loop
from ..settings import Settings
from .admission_register import register_admitted
from .checks import LongNumbersRoute, not_finished


class AdmissionRequestIn(Open):
    uid: Annotated[str, Field(min_length=1)]
    operation: str | None = None
    namespace: str | None = None
    object: dict[str, Any] | None = Field(
        default=None, description="The workload (TrainJob, PyTorchJob, JobSet, batch/v1 Job, Pod running torchrun)"
    )


class AdmissionReviewIn(Open):
    apiVersion: ApiVersion
    kind: Literal["AdmissionReview"]
    request: AdmissionRequestIn


class StatusOut(BaseModel):
    code: int
    message: str


class AdmissionResponseOut(BaseModel):
    uid: str
    allowed: bool
    status: StatusOut | None = Field(
        default=None,
        description="On denial: 403 invalid topology, 422 unreadable or uncheckable, 503 check unfinished in time",
    )
    warnings: list[Annotated[str, Field(max_length=WARNING_LIMIT)]] | None = None


class AdmissionReviewOut(BaseModel):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponseOut


#: Where a body that is no readable AdmissionReview still names itself: the API server writes ``apiVersion`` and
#: then ``request`` with ``uid`` first (bounded gaps: a megabyte of anything else is never scanned twice).
_API_VERSION = re.compile(rb'"apiVersion"\s*:\s*"(admission\.k8s\.io/v1(?:beta1)?)"')
_UID = re.compile(rb'"request"\s*:\s*\{[^{}]{0,2000}?"uid"\s*:\s*"([A-Za-z0-9._:-]{1,128})"')


def _identified(body: bytes) -> tuple[str, str] | None:
    """(apiVersion, request uid) of a body that may not parse: enough to answer it with a review."""
    version, uid = _API_VERSION.search(body), _UID.search(body)
    if version is None or uid is None:
        return None
    return version.group(1).decode(), uid.group(1).decode()


class ReviewRoute(LongNumbersRoute):
    """The webhook's route: a body the API server sent that cannot be read (nested too deep for the parser,
    malformed JSON, a field of the wrong type) is still answered with a review denying it — a problem response
    would count as a failed call, and ``failurePolicy: Ignore`` would admit the workload unchecked."""

    def refused(self, error: Exception, body: bytes) -> Response | None:
        found = _identified(body)
        if found is None:
            return None
        api_version, uid = found
        if isinstance(error, RequestValidationError):
            fields = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors()[:MAX_PROBLEMS]
            )
            code, reason = CODE_UNREADABLE, f"the AdmissionReview is malformed: {fields}"
        else:
            code, reason = CODE_MALFORMED, "the AdmissionReview could not be parsed (nested too deep, or not JSON)"
        denied = deny(code, shorten(f"meshctx: not admitted: {reason}", 1000))
        return JSONResponse(answer(api_version, uid, denied))


router = APIRouter(prefix="/v1", route_class=ReviewRoute)


@router.post(
    "/admission/kubernetes",
    tags=["integration"],
    response_model=None,
    responses={
        200: {"model": AdmissionReviewOut, "description": "The verdict, as an AdmissionReview (denials too)."},
        **REFUSED,
    },
    summary="Kubernetes validating admission webhook",
)
async def admission_kubernetes(body: AdmissionReviewIn, request: Request) -> JSONResponse:
    """``admission.k8s.io/v1`` (or ``v1beta1``) AdmissionReview in, the same apiVersion and kind
    back with ``response.uid`` copied. Every verdict about the *workload* is a 200 review: denied
    with ``status.code`` 403 for an invalid topology and 422 for unreadable ``meshctx.io/*``
    annotations or job fields, 503 for a check that could not finish in time (unless
    ``MESHCTX_ADMISSION_UNCHECKED=allow``). A body that is not an AdmissionReview at all (no
    ``request.uid``, another kind) cannot be answered with one, so it gets a 422 problem response — the API
    server then applies the webhook's ``failurePolicy`` as for any failed call."""
    settings: Settings = request.app.state.settings
    document = body.model_dump()
    review = document["request"]
    policy = settings.admission_unchecked
    if not_ours(review):
        decision = ALLOWED
    else:
        deadline_s = settings.check_deadline_s
        try:
            decision = await off_loop(
                request.app.state,
                decide,
                review,
                settings.limits.errors,
                policy,
                pool="admission",
                deadline_s=deadline_s,
            )
        except Busy as busy:
            decision = unfinished(review, not_finished(busy, deadline_s), policy)
    request.app.state.metrics.observe_admission("kubernetes", decision.verdict)
    reply = answer(document["apiVersion"], review["uid"], decision)
    if decision.workload is not None:  # checked and admitted: registered when MESHCTX_ADMISSION_REGISTER says so
        await register_admitted(request, decision.workload, reply["response"])
    return JSONResponse(reply)
