"""``/docs`` (Swagger UI) and ``/redoc`` served with their JavaScript and CSS from the app itself.

FastAPI's own pages load those assets from a CDN, so on an offline cluster they are blank. The assets here come
from the ``fastapi-offline`` package (the Swagger UI and ReDoc distributions as files, nothing else used) and are
served under ``/docs/static/``; the pages ask for nothing beyond this service (no web fonts, no validator badge).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Route

STATIC_PATH = "/docs/static"
#: A blank icon: browsers ask for one, and the pages must not reach beyond the service for it.
NO_FAVICON = "data:,"
#: What the pages may load: only this service (and inline/data: parts the two UIs build themselves). ReDoc
#: hard-codes a logo on its own CDN; under this policy the browser never asks for it and ReDoc hides the image.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def docs_assets_dir() -> str:
    """The folder holding ``swagger-ui-bundle.js``, ``swagger-ui.css`` and ``redoc.standalone.js``."""
    return str(files("fastapi_offline") / "static")


def install_docs_pages(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed ``app.docs_url`` / ``app.redoc_url`` pages with ones using local assets; the
    URLs stay where FastAPI put them (or absent where they are switched off) and ``/openapi.json`` is untouched."""
    if app.openapi_url is None:
        return
    pages = {url for url in (app.docs_url, app.redoc_url) if url}
    app.router.routes[:] = [route for route in app.router.routes if not _is_page(route, pages)]
    openapi_url = app.openapi_url
    title = app.title

    if app.docs_url:

        @app.get(app.docs_url, include_in_schema=False)
        async def swagger_ui() -> HTMLResponse:
            return _local_only(
                get_swagger_ui_html(
                    openapi_url=openapi_url,
                    title=f"{title} · API",
                    swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
                    swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
                    swagger_favicon_url=NO_FAVICON,
                    oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
                    # validatorUrl: Swagger UI would otherwise fetch a badge from validator.swagger.io.
                    swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
                )
            )

    if app.redoc_url:

        @app.get(app.redoc_url, include_in_schema=False)
        async def redoc() -> HTMLResponse:
            return _local_only(
                get_redoc_html(
                    openapi_url=openapi_url,
                    title=f"{title} · API",
                    redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
                    redoc_favicon_url=NO_FAVICON,
                    with_google_fonts=False,
                )
            )

    app.mount(STATIC_PATH, StaticFiles(directory=docs_assets_dir()), name="docs-static")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["content-security-policy"] = CONTENT_SECURITY_POLICY
    return page


def _is_page(route: BaseRoute, pages: set[str]) -> bool:
    return isinstance(route, Route) and route.path in pages
