"""Typed clients for the meshctx service, sync (``MeshctxClient``) and async (``AsyncMeshctxClient``).

Both send the wire format of ``TopologyRequest.to_dict()`` and return the service's JSON as dicts (the
same dicts ``ValidationReport.to_dict()`` / ``MeshPlan.to_dict()`` give locally). Connection failures and
503 answers are retried with exponential backoff: validation is pure, and registry writes are idempotent
PUTs (an attestation repeated by a retry is recorded twice, harmlessly). A refused request (4xx) raises
``ProblemError`` carrying the RFC 9457 body. Registry calls send ``token`` (default ``$MESHCTX_TOKEN``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from .errors import ClientError, MeshctxError, MissingExtra, ProblemError, ServiceUnreachable
from .plan.request import TopologyRequest

try:
    import httpx
except ModuleNotFoundError as missing:  # pip install meshctx brings no dependencies: name the extra
    if missing.name != "httpx":
        raise
    raise MissingExtra("meshctx.client", "httpx", "client") from None

if TYPE_CHECKING:
    from .plan import MeshPlan

Json = dict[str, Any]
TopologyLike = TopologyRequest | Mapping[str, Any]
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)
RETRY_STATUSES = frozenset({503})
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
TOKEN_ENV = "MESHCTX_TOKEN"


def __getattr__(name: str) -> Any:
    if name == "ServiceError":  # the name until 0.1.0; the service has a ServiceError of its own
        import warnings

        warnings.warn("meshctx.client.ServiceError is now ClientError", DeprecationWarning, stacklevel=2)
        return ClientError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncMeshctxClient",
    "ClientError",
    "MeshctxClient",
    "MeshctxError",
    "ProblemError",
    "RetryPolicy",
    "ServiceUnreachable",
    "attest_context",
]


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
            raise ClientError(f"expected a JSON object from {response.url}, got {type(data).__name__}")
        return data
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"status": response.status_code, "detail": response.text[:500]}
    raise ProblemError(response.status_code, problem)


class _Attempts:
    """The retry decisions of one request, shared by both clients (which differ only in how they send and sleep).

    After each attempt: ``failed(error)`` for a transport error (raises ``ServiceUnreachable`` when it is not
    retried or no attempt is left), then ``done(response)``: ``True`` to return the response, ``False`` to sleep
    ``delay`` seconds and try again."""

    def __init__(self, policy: RetryPolicy, url: httpx.URL) -> None:
        self.policy = policy
        self.url = url
        self.attempt = 0
        self.delay = 0.0

    def failed(self, error: httpx.TransportError) -> None:
        # A refused or timed-out connection is retried; one dropped mid-answer is not.
        if not isinstance(error, RETRY_ERRORS) or self.attempt == self.policy.retries:
            attempts = self.attempt + 1
            raise ServiceUnreachable(
                f"no answer from {self.url} after {attempts} attempt{'s' * (attempts > 1)}: {error!r}"
            ) from error

    def done(self, response: httpx.Response | None) -> bool:
        if response is not None and (response.status_code not in RETRY_STATUSES or self.attempt == self.policy.retries):
            return True
        self.delay = self.policy.delay(self.attempt, response)
        self.attempt += 1
        return False


@dataclass(frozen=True)
class _Call:
    """One HTTP request of the API; ``empty``: success has no body (204)."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    empty: bool = False

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.json is not None:
            out["json"] = self.json
        return out


def _seg(name: str) -> str:
    return quote(name, safe="")


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag is not None else {}


def _page(limit: int | None, cursor: str | None, **filters: Any) -> dict[str, Any]:
    params = {k: v for k, v in filters.items() if v is not None}
    if limit is not None:
        params["limit"] = limit
    if cursor is not None:
        params["cursor"] = cursor
    return params


R = TypeVar("R")


class _Api(Generic[R]):
    """Every request of the API, built once for both clients: ``R`` is ``Json`` for ``MeshctxClient`` and an
    awaitable of it for ``AsyncMeshctxClient``, whose ``_do`` is a coroutine (only sending differs).

    Every method raises ``ProblemError`` when the service refuses the request (its problem+json body) and
    ``ServiceUnreachable`` when no answer came after every retry."""

    def _do(self, call: _Call) -> R:
        raise NotImplementedError

    def validate(self, request: TopologyLike) -> R:
        """``POST /v1/validate``: check a topology (an invalid one is an answer, not an error).

        Args:
            request: a ``TopologyRequest`` or its ``to_dict()`` form.

        Returns:
            ``ValidationReport.to_dict()``: ``valid``, ``problems``, ``warnings``, ``suggestions``, ``plan``.
        """
        return self._do(_Call("POST", "/v1/validate", json=_body(request)))

    def layout(self, request: TopologyLike, *, groups: bool = False, rank: int | None = None) -> R:
        """``POST /v1/layout``: the plan of a valid topology.

        Args:
            request: a ``TopologyRequest`` or its ``to_dict()`` form.
            groups: list every group of every axis (refused above the service's listed-world limit).
            rank: answer only this rank's coordinates and groups.

        Returns:
            The plan dict, or ``{"rank", "coordinates", "groups"}`` with ``rank``; the validation report
            (``valid: false``) when the topology is invalid.
        """
        return self._do(_Call("POST", "/v1/layout", json=_body(request), params=_layout_params(groups, rank)))

    def render(self, target: str, body: Mapping[str, Any]) -> R:
        """``POST /v1/render/{target}``: what a launcher needs to run the topology.

        Args:
            target: ``torchrun``, ``slurm``, ``trainjob``, ``kueue`` or ``skypilot``.
            body: the topology request's fields plus the render options (docs/launch.md).

        Returns:
            The validation report plus ``rendering`` (null when the topology is invalid).
        """
        return self._do(_Call("POST", f"/v1/render/{target}", json=dict(body)))

    def place(self, body: Mapping[str, Any]) -> R:
        """``POST /v1/place``: which allocated node runs which node rank.

        Args:
            body: the topology request's fields plus ``topology`` (or ``cluster_name``) and ``nodes``.

        Returns:
            The placement (docs/placement.md), or a report with ``valid: false`` and every problem.
        """
        return self._do(_Call("POST", "/v1/place", json=dict(body)))

    def import_topology(self, body: Mapping[str, Any]) -> R:
        """``POST /v1/topology/import``: a Slurm or kubectl description as meshctx topology JSON.

        Args:
            body: the source's ``format`` and its text or document (docs/placement.md, "Importers").

        Returns:
            ``{"nodes": [...]}``, the topology ``place`` and ``put_cluster`` take.
        """
        return self._do(_Call("POST", "/v1/topology/import", json=dict(body)))

    # -- registry (docs/registry.md); every call acts for the token's tenant --------------------------------

    def put_cluster(
        self,
        name: str,
        *,
        nodes: int,
        gpus_per_node: int,
        nvlink_domain: int | None = None,
        topology: Mapping[str, Any] | None = None,
    ) -> R:
        """``PUT /v1/clusters/{name}``: create or replace a cluster of the token's tenant.

        Args:
            name: the cluster's name (letters, digits, ``.``, ``_``, ``-``).
            nodes: its node count; gpus_per_node, nvlink_domain: its shape.
            topology: meshctx topology JSON listing its nodes (for placement of its jobs).

        Returns:
            The stored cluster.
        """
        body: dict[str, Any] = {"nodes": nodes, "gpus_per_node": gpus_per_node, "nvlink_domain": nvlink_domain}
        if topology is not None:
            body["topology"] = dict(topology)
        return self._do(_Call("PUT", f"/v1/clusters/{_seg(name)}", json=body))

    def get_cluster(self, name: str) -> R:
        """``GET /v1/clusters/{name}``: the stored cluster, with its held GPUs; ``ProblemError`` 404 if none."""
        return self._do(_Call("GET", f"/v1/clusters/{_seg(name)}"))

    def list_clusters(self, *, limit: int | None = None, cursor: str | None = None, topology: bool = False) -> R:
        """``GET /v1/clusters``: one page of the tenant's clusters.

        Args:
            limit: the page size; cursor: the previous page's ``next_cursor``.
            topology: include each cluster's ``topology`` (left out by default: it can be large).

        Returns:
            ``{"items": [...], "next_cursor": str | None}``.
        """
        params = _page(limit, cursor)
        if topology:
            params["topology"] = "true"
        return self._do(_Call("GET", "/v1/clusters", params=params))

    def occupancy(self, name: str) -> R:
        """``GET /v1/clusters/{name}/occupancy``: per node the active job holding it (``occupancy``:
        ``[{"node", "job"}]``), and the cluster's free GPUs."""
        return self._do(_Call("GET", f"/v1/clusters/{_seg(name)}/occupancy"))

    def register_job(
        self,
        job_id: str,
        request: TopologyLike,
        *,
        cluster: str | None = None,
        labels: Mapping[str, str] | None = None,
        if_match: str | None = None,
        nodes: str | Sequence[str] | None = None,
        lease_seconds: int | None = None,
    ) -> R:
        """``PUT /v1/jobs/{job_id}``: register a job's validated plan. Repeating the same registration is a no-op
        (renewing its lease).

        Args:
            job_id: the job's name; request: its topology (a ``TopologyRequest`` or its dict).
            cluster: the cluster whose GPUs it holds; labels: key/value labels to filter by.
            if_match: the job's current ETag, to replace a registered job.
            nodes: its allocation (hostlist or list), held while it is active and placed on the cluster's topology
                (the job's ``placement``).
            lease_seconds: the job is lost unless renewed within it (0: never; default: the service's
                ``MESHCTX_JOB_LEASE_S``).

        Returns:
            The stored job, ``etag`` included; an invalid topology, no capacity or nodes in use raise ``ProblemError``.
        """
        body: dict[str, Any] = {"request": dict(_body(request)), "cluster": cluster, "labels": dict(labels or {})}
        if nodes is not None:
            body["nodes"] = nodes if isinstance(nodes, str) else list(nodes)
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        return self._do(_Call("PUT", f"/v1/jobs/{_seg(job_id)}", json=body, headers=_if_match(if_match)))

    def get_job(self, job_id: str) -> R:
        """``GET /v1/jobs/{job_id}``: the stored job (``etag`` included); ``ProblemError`` 404 if none."""
        return self._do(_Call("GET", f"/v1/jobs/{_seg(job_id)}"))

    def list_jobs(
        self,
        *,
        cluster: str | None = None,
        state: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> R:
        """``GET /v1/jobs``: one page of the tenant's jobs.

        Args:
            cluster, state, labels: filters (all must match); limit, cursor: as for ``list_clusters``.

        Returns:
            ``{"items": [...], "next_cursor": str | None}``.
        """
        params = _page(limit, cursor, cluster=cluster, state=state)
        if labels:
            params["label"] = [f"{k}={v}" for k, v in labels.items()]
        return self._do(_Call("GET", "/v1/jobs", params=params))

    def set_state(self, job_id: str, state: str, *, if_match: str | None = None) -> R:
        """``PUT /v1/jobs/{job_id}/state``: move a job along its life (``running``, ``finished``, ``failed``).

        Args:
            job_id: the job; state: the new state; if_match: the job's current ETag, if the change must be
                conditional.

        Returns:
            The stored job; a move its life does not allow raises ``ProblemError`` (409).
        """
        body = {"state": state}
        return self._do(_Call("PUT", f"/v1/jobs/{_seg(job_id)}/state", json=body, headers=_if_match(if_match)))

    def heartbeat(self, job_id: str) -> R:
        """Renew the job's lease; the job, with its new ``lease_expires_at``. An ended (or lost) job: 409
        ``job_ended``."""
        return self._do(_Call("POST", f"/v1/jobs/{_seg(job_id)}/heartbeat"))

    def attest(self, job_id: str, fingerprint: str) -> R:
        """``POST /v1/jobs/{job_id}/attestations``: report the fingerprint the job built.

        Args:
            job_id: the job; fingerprint: ``MeshPlan.fingerprint()`` of the meshes it built.

        Returns:
            The attestation; a mismatch raises ``ProblemError`` (409, both fingerprints).
        """
        return self._do(_Call("POST", f"/v1/jobs/{_seg(job_id)}/attestations", json={"fingerprint": fingerprint}))

    @staticmethod
    def _delete_cluster(name: str) -> _Call:
        return _Call("DELETE", f"/v1/clusters/{_seg(name)}", empty=True)

    @staticmethod
    def _delete_job(job_id: str, if_match: str | None) -> _Call:
        return _Call("DELETE", f"/v1/jobs/{_seg(job_id)}", headers=_if_match(if_match), empty=True)

    @staticmethod
    def _attestations(job_id: str) -> _Call:
        return _Call("GET", f"/v1/jobs/{_seg(job_id)}/attestations")


def _headers(token: str | None) -> dict[str, str]:
    token = token if token is not None else os.environ.get(TOKEN_ENV) or None
    return {"Authorization": f"Bearer {token}"} if token else {}


class MeshctxClient(_Api[Json]):
    """Blocking client. ``with MeshctxClient("http://host:8000") as client: client.validate(request)``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport, headers=_headers(token))

    def ready(self) -> bool:
        return self._send("GET", "/readyz").status_code == 200

    def delete_cluster(self, name: str) -> None:
        self._do(self._delete_cluster(name))

    def delete_job(self, job_id: str, *, if_match: str | None = None) -> None:
        self._do(self._delete_job(job_id, if_match))

    def attestations(self, job_id: str) -> list[Json]:
        return list(self._do(self._attestations(job_id))["items"])

    def _do(self, call: _Call) -> Json:
        response = self._send(call.method, call.path, **call.kwargs())
        return {} if call.empty and response.is_success else _json(response)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempts = _Attempts(self.retry, self._http.base_url)
        while True:
            try:
                response: httpx.Response | None = self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                response = None
                attempts.failed(error)
            if attempts.done(response):
                assert response is not None
                return response
            time.sleep(attempts.delay)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MeshctxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMeshctxClient(_Api[Awaitable[Json]]):
    """The same client for asyncio code (schedulers, web backends)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport, headers=_headers(token))

    async def ready(self) -> bool:
        return (await self._send("GET", "/readyz")).status_code == 200

    async def delete_cluster(self, name: str) -> None:
        await self._do(self._delete_cluster(name))

    async def delete_job(self, job_id: str, *, if_match: str | None = None) -> None:
        await self._do(self._delete_job(job_id, if_match))

    async def attestations(self, job_id: str) -> list[Json]:
        return list((await self._do(self._attestations(job_id)))["items"])

    async def _do(self, call: _Call) -> Json:
        response = await self._send(call.method, call.path, **call.kwargs())
        return {} if call.empty and response.is_success else _json(response)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempts = _Attempts(self.retry, self._http.base_url)
        while True:
            try:
                response: httpx.Response | None = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                response = None
                attempts.failed(error)
            if attempts.done(response):
                assert response is not None
                return response
            await asyncio.sleep(attempts.delay)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMeshctxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LiveTopology(Protocol):
    """Anything that reads its live meshes back into a plan: a ``MeshContext`` (kept structural, so the client
    does not import the torch side)."""

    def to_plan(self) -> MeshPlan: ...


def attest_context(ctx: LiveTopology, job_id: str, server: str | MeshctxClient, *, token: str | None = None) -> Json:
    """Report the fingerprint of the meshes ``ctx`` built to the registry (after ``MeshContext.build``).

    A match marks the job running; a mismatch raises ``ProblemError`` (409) with both fingerprints. Call it
    from one rank (e.g. rank 0): every rank built the same topology."""
    fingerprint = ctx.to_plan().fingerprint()
    if isinstance(server, MeshctxClient):
        return server.attest(job_id, fingerprint)
    with MeshctxClient(server, token=token) as client:
        return client.attest(job_id, fingerprint)
