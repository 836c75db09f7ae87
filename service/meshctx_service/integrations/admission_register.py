"""The admission webhook registers what it admits (``MESHCTX_ADMISSION_REGISTER=true``): docs/registry.md.

An opted-in workload that the webhook allowed on CREATE (never a ``dryRun``) is registered as a job keyed by the
workload's UID (``metadata.uid``), for the tenant its namespace maps to (``MESHCTX_ADMISSION_TENANTS``, a JSON
mapping; ``"*"`` for every other namespace), on ``MESHCTX_ADMISSION_CLUSTER`` when set, with the default lease
(the job's ``MeshContext.from_env()`` renews it once it runs). A retried review registers the same body again: the
registry's idempotent PUT answers the stored job. The verdict stays the webhook's: a registration the registry
refuses (capacity, nodes, a namespace without a tenant) adds a warning to the allowed review, never a denial.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
from fastapi import Request

from meshctx.integrations.job_sizes import read_job_sizes
from meshctx.integrations.workloads import WORKLOADS, get, workload_request
from meshctx.launch.annotations import MODEL_ANNOTATIONS, PREFIX, SIZE_ANNOTATIONS, STRATEGY
from meshctx.plan.request import TopologyRequest

from ..http.errors import ServiceError
from ..registry.lazy import LazyRegistry
from ..settings import Settings

WARNING_LIMIT = 120
log = logging.getLogger("meshctx.admission")


def _admitted_request(request: Mapping[str, Any]) -> tuple[str, str, TopologyRequest, dict[str, str]] | None:
    """(uid, namespace, topology, labels) of an opted-in, readable workload being created; None otherwise."""
    obj = request.get("object")
    if request.get("operation") != "CREATE" or request.get("dryRun") or not isinstance(obj, Mapping):
        return None
    annotations = get(obj, "metadata", "annotations")
    uid = get(obj, "metadata", "uid")
    if not isinstance(annotations, Mapping) or not any(str(k).startswith(PREFIX) for k in annotations):
        return None
    kind = str(obj.get("kind") or "")
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    reader = WORKLOADS.get((group, kind))
    if reader is None or not isinstance(uid, str) or not uid:
        return None
    job = read_job_sizes(annotations, STRATEGY, SIZE_ANNOTATIONS | MODEL_ANNOTATIONS)
    world = reader(obj, annotations)
    if job.errors or world.problems or world.unknown is not None:
        return None
    namespace = str(get(obj, "metadata", "namespace") or request.get("namespace") or "")
    name = str(get(obj, "metadata", "name") or request.get("name") or "")
    ask = workload_request(job, world)
    labels = {"k8s-kind": kind[:256], "k8s-namespace": namespace[:256], "k8s-name": name[:256]}
    return uid, namespace, ask, labels


def _tenant(settings: Settings, namespace: str) -> str | None:
    tenants = settings.admission_tenants or {}
    return tenants.get(namespace) or tenants.get("*")


def _register(registry: LazyRegistry, settings: Settings, request: Mapping[str, Any]) -> str | None:
    """Register the admitted workload; a warning to add to the review, or None."""
    found = _admitted_request(request)
    if found is None:
        return None
    uid, namespace, ask, labels = found
    tenant = _tenant(settings, namespace)
    if tenant is None:
        return f"meshctx: not registered: namespace {namespace!r} maps to no tenant (MESHCTX_ADMISSION_TENANTS)"
    try:
        registry.get().register_job(
            tenant,
            uid,
            ask,
            cluster=settings.admission_cluster,
            labels=labels,
            max_nodes=settings.max_place_nodes,
        )
    except ServiceError as error:
        log.warning("admission: registering %s/%s (%s) refused: %s", namespace, labels["k8s-name"], uid, error)
        return f"meshctx: not registered ({error.code}): {error}"
    return None


async def register_admitted(request: Request, document: Mapping[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` (the webhook's review), after registering the workload it allowed when the service is told to."""
    settings: Settings = request.app.state.settings
    response = answer.get("response") or {}
    if not settings.admission_register or not response.get("allowed"):
        return answer
    registry: LazyRegistry = request.app.state.registry
    warning = await anyio.to_thread.run_sync(_register, registry, settings, document.get("request") or {})
    if warning is not None:
        shown = warning if len(warning) <= WARNING_LIMIT else warning[: WARNING_LIMIT - 1] + "…"
        response["warnings"] = [*response.get("warnings", []), shown]
    return answer
