"""``create_app(settings)``: the validation service as a FastAPI app (``meshctx serve`` runs it under uvicorn)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from meshctx import __version__
from meshctx.config import ParallelismSizes
from meshctx.plan import validate_topology

from .auth import Role
from .auth.gate import Gate, needs
from .http import health
from .http.docs_pages import install_docs_pages
from .http.errors import install_error_handlers
from .http.fast_paths import DirectRoute
from .http.logging import AccessLog, configure_logging
from .http.metrics import Metrics
from .http.middleware import LimitBody, ObserveRequests
from .http.openapi import openapi_schema
from .http.protocol import HttpProtocol
from .http.work import WorkPool
from .integrations import kubernetes, render, skypilot
from .placement import routes as placement_routes
from .registry import LazyRegistry, default_database_url, ensure_schema
from .registry import routes as registry_routes
from .settings import Settings
from .topology import routes as topology_routes
from .topology import schemas as topology_schemas
from .ui.routes import mount_ui

DESCRIPTION = (
    "Check a distributed-training topology before the job launches: the same planner, answers and wire "
    "format as the `meshctx` CLI. Errors are RFC 9457 `application/problem+json`."
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Plan one topology end to end before reporting ready, so the first real request pays no warm-up.
    validate_topology("fsdp2", ParallelismSizes(tp_size=8, ep_size=8), world_size=131072).to_dict()
    settings: Settings = app.state.settings
    url = settings.database_url or default_database_url(settings.data_dir)
    await anyio.to_thread.run_sync(ensure_schema, url)  # safe from every replica at once (registry/schema.py)
    # Opened by the first request that needs it: SQLAlchemy and the store load then (registry/lazy.py).
    app.state.registry = LazyRegistry(url, default_lease_s=settings.job_lease_s)
    # Everything loaded so far lives as long as the process: move it out of the collector's sight, so the
    # periodic full collections between requests scan only per-request garbage (shorter tail latencies).
    gc.collect()
    gc.freeze()
    app.state.ready = True
    yield
    app.state.ready = False
    app.state.registry.close()
    app.state.work.close()
    app.state.admission_work.close()
    if app.state.access_log is not None:
        app.state.access_log.close()


class ServiceApp(FastAPI):
    """The service's FastAPI app; ``direct``, when set, answers ``POST /v1/validate`` before FastAPI's middleware
    stack (``http/fast_paths.py``)."""

    direct: DirectRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.direct is not None and self.direct.matches(scope):
            await self.direct(self, scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            # Starlette re-raises an unexpected error after its handler logged it and sent the 500; raised on to
            # uvicorn it would close the connection and reset the client's next (pipelined) request.
            if scope["type"] != "http":
                raise


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()
    app = ServiceApp(title="meshctx", version=__version__, description=DESCRIPTION, lifespan=_lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.ready = False
    app.state.gate = Gate.from_settings(settings)
    app.state.body_models = (topology_schemas.TopologyBody, render.RenderBody)  # read from bytes, see openapi.py
    app.state.answers = topology_routes.RecentAnswers()
    app.state.work = WorkPool(settings.work_threads, settings.work_queue, settings.work_deadline_s)
    # Admission's own planning threads: no other route can take them (contract.md "The admission gate never opens").
    app.state.admission_work = WorkPool(
        settings.admission_threads, settings.admission_queue, settings.work_deadline_s, name="meshctx-admission"
    )
    install_error_handlers(app)  # every handler, whichever routers follow
    # Validate, layout, render and place answer without a token unless MESHCTX_OPEN_VALIDATE=false closes them all.
    planning = [] if settings.open_validate else [Depends(needs(Role.READ))]
    app.include_router(topology_routes.router, dependencies=planning)
    app.include_router(render.router, dependencies=planning)
    app.include_router(placement_routes.router, dependencies=planning)
    app.include_router(registry_routes.router)
    app.include_router(health.router)
    for integration in (kubernetes, skypilot):
        app.include_router(integration.router)
    mount_ui(app)  # topology viewer at /ui
    install_docs_pages(app)  # /docs and /redoc with local assets (offline clusters)
    place_limit = {"/v1/place": (settings.max_place_body_bytes, "MESHCTX_MAX_PLACE_BODY_BYTES")}
    app.add_middleware(LimitBody, max_bytes=settings.max_body_bytes, per_path=place_limit)
    # The access log lines are INFO: written when enabled and the log level lets INFO through.
    logged = settings.access_log and settings.log_level in ("info", "debug")
    app.state.access_log = AccessLog(on_drop=app.state.metrics.access_log_dropped.inc) if logged else None
    app.add_middleware(ObserveRequests, metrics=app.state.metrics, access_log=app.state.access_log)  # outermost
    if settings.fast_paths and settings.open_validate:  # validate's direct path (http/fast_paths.py)
        app.direct = DirectRoute(
            topology_routes.router,
            "/v1/validate",
            topology_routes.answer_validate,
            max_body_bytes=settings.max_body_bytes,
            metrics=app.state.metrics,
            access_log=app.state.access_log,
        )
    app.openapi = partial(openapi_schema, app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (``meshctx_service.app:app_from_env``): settings from ``MESHCTX_*``, JSON logs."""
    settings = Settings()
    configure_logging(settings.log_level)
    HttpProtocol.configure(
        settings.max_header_bytes, settings.header_timeout_s, settings.max_connections, settings.fast_paths
    )
    return create_app(settings)
