"""Typed clients for the meshctx validation service, sync (``MeshctxClient``) and async (``AsyncMeshctxClient``).

Both send the wire format of ``TopologyRequest.to_dict()`` and return the service's JSON as dicts (the
same dicts ``ValidationReport.to_dict()`` / ``MeshPlan.to_dict()`` give locally). Every call is pure,
so retrying is always safe: connection failures and 503 answers are retried with exponential backoff.
A refused request (4xx) raises ``ProblemError`` carrying the RFC 9457 body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .plan.request import TopologyRequest

Json = dict[str, Any]
TopologyLike = TopologyRequest | Mapping[str, Any]
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
RETRY_STATUSES = frozenset({503})
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


class MeshctxError(Exception):
    """Base class of the client's errors."""


class ServiceUnreachable(MeshctxError):
    """No answer after every retry (connection refused, reset or timed out)."""


class ProblemError(MeshctxError):
    """The service refused the request; ``problem`` is its ``application/problem+json`` body."""

    def __init__(self, status: int, problem: Json) -> None:
        self.status = status
        self.problem = problem
        self.errors: list[Json] = list(problem.get("errors") or [])
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or 'error'}")


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first, sleeping ``backoff · 2**attempt`` (at most ``max_backoff``)."""

    retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 2.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            if retry_after.isdigit():
                return min(float(retry_after), self.max_backoff)
        return min(self.backoff * 2**attempt, self.max_backoff)


def _body(request: TopologyLike) -> Mapping[str, Any]:
    return request.to_dict() if isinstance(request, TopologyRequest) else request


def _layout_params(groups: bool, rank: int | None) -> dict[str, str]:
    params = {"groups": "true"} if groups else {}
    if rank is not None:
        params["rank"] = str(rank)
    return params


def _json(response: httpx.Response) -> Json:
    if response.is_success:
        data = response.json()
        if not isinstance(data, dict):
            raise MeshctxError(f"expected a JSON object from {response.url}, got {type(data).__name__}")
        return data
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"status": response.status_code, "detail": response.text[:500]}
    raise ProblemError(response.status_code, problem)


def _unreachable(url: httpx.URL, error: Exception, attempts: int) -> str:
    return f"no answer from {url} after {attempts} attempt{'s' * (attempts > 1)}: {error!r}"


class MeshctxClient:
    """Blocking client. ``with MeshctxClient("http://host:8000") as client: client.validate(request)``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def validate(self, request: TopologyLike) -> Json:
        """``ValidationReport.to_dict()`` of the request (an invalid topology is an answer, not an error)."""
        return _json(self._send("POST", "/v1/validate", json=_body(request)))

    def layout(self, request: TopologyLike, *, groups: bool = False, rank: int | None = None) -> Json:
        """The plan (``groups``: with every group list), one ``rank``'s view, or the report if invalid."""
        return _json(self._send("POST", "/v1/layout", json=_body(request), params=_layout_params(groups, rank)))

    def render(self, target: str, body: Mapping[str, Any]) -> Json:
        """``POST /v1/render/{target}``: the validate report plus ``rendering`` (null when invalid)."""
        return _json(self._send("POST", f"/v1/render/{target}", json=dict(body)))

    def ready(self) -> bool:
        return self._send("GET", "/readyz").status_code == 200

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retry.retries + 1):
            last = attempt == self.retry.retries
            try:
                response = self._http.request(method, path, **kwargs)
            except RETRY_ERRORS as error:
                if last:
                    raise ServiceUnreachable(_unreachable(self._http.base_url, error, attempt + 1)) from error
                time.sleep(self.retry.delay(attempt))
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            time.sleep(self.retry.delay(attempt, response))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MeshctxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMeshctxClient:
    """The same client for asyncio code (schedulers, web backends)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def validate(self, request: TopologyLike) -> Json:
        return _json(await self._send("POST", "/v1/validate", json=_body(request)))

    async def layout(self, request: TopologyLike, *, groups: bool = False, rank: int | None = None) -> Json:
        params = _layout_params(groups, rank)
        return _json(await self._send("POST", "/v1/layout", json=_body(request), params=params))

    async def ready(self) -> bool:
        return (await self._send("GET", "/readyz")).status_code == 200

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retry.retries + 1):
            last = attempt == self.retry.retries
            try:
                response = await self._http.request(method, path, **kwargs)
            except RETRY_ERRORS as error:
                if last:
                    raise ServiceUnreachable(_unreachable(self._http.base_url, error, attempt + 1)) from error
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            await asyncio.sleep(self.retry.delay(attempt, response))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMeshctxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
