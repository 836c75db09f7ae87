"""The admission webhook registers what it admits (``MESHCTX_ADMISSION_REGISTER=true``): docs/registry.md.

An opted-in workload that the webhook allowed on CREATE (never a ``dryRun``) is registered as a job keyed by the
workload's UID (``metadata.uid``), for the tenant its namespace maps to (``MESHCTX_ADMISSION_TENANTS``, a JSON
mapping; ``"*"`` for every other namespace), on ``MESHCTX_ADMISSION_CLUSTER`` when set, with the default lease
(the job's ``MeshContext.from_env()`` renews it once it runs). A retried review registers the same body again: the
registry's idempotent PUT answers the stored job. The verdict stays the webhook's: a registration the registry
refuses (capacity, nodes, a namespace without a tenant) adds a warning to the allowed review, never a denial.
What is registered is what the check read (the decision's ``Workload``): the workload is never read twice.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import Request

from meshctx.integrations.kubernetes_admission import WARNING_LIMIT, Workload

from ..http.errors import ServiceError
from ..registry.lazy import LazyRegistry
from ..settings import Settings

log = logging.getLogger("meshctx.admission")


def _tenant(settings: Settings, namespace: str) -> str | None:
    tenants = settings.admission_tenants or {}
    return tenants.get(namespace) or tenants.get("*")


def _register(registry: LazyRegistry, settings: Settings, workload: Workload) -> str | None:
    """Register the admitted workload when it is being created and has a UID; a warning to add to the review,
    or None."""
    if not workload.created or workload.uid is None:
        return None
    tenant = _tenant(settings, workload.namespace)
    if tenant is None:
        return (
            f"meshctx: not registered: namespace {workload.namespace!r} maps to no tenant (MESHCTX_ADMISSION_TENANTS)"
        )
    labels = {
        "k8s-kind": workload.kind[:256],
        "k8s-namespace": workload.namespace[:256],
        "k8s-name": workload.name[:256],
    }
    try:
        registry.get().register_job(
            tenant,
            workload.uid,
            workload.request,
            cluster=settings.admission_cluster,
            labels=labels,
            max_nodes=settings.max_place_nodes,
        )
    except ServiceError as error:
        log.warning(
            "admission: registering %s/%s (%s) refused: %s", workload.namespace, labels["k8s-name"], workload.uid, error
        )
        return f"meshctx: not registered ({error.code}): {error}"
    return None


async def register_admitted(request: Request, workload: Workload, response: dict[str, Any]) -> None:
    """Register ``workload`` (checked and admitted by the webhook) when the service is told to; a registration
    the registry refuses adds a warning to ``response`` (the review's AdmissionResponse)."""
    settings: Settings = request.app.state.settings
    if not settings.admission_register:
        return
    registry: LazyRegistry = request.app.state.registry
    warning = await anyio.to_thread.run_sync(_register, registry, settings, workload)
    if warning is not None:
        shown = warning if len(warning) <= WARNING_LIMIT else warning[: WARNING_LIMIT - 1] + "…"
        response["warnings"] = [*response.get("warnings", []), shown]
