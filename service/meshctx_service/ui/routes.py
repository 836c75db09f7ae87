"""The topology viewer at ``/ui``: static ES modules shipped in the package, served as they are (no build step)."""

from __future__ import annotations

import os
from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from .meta import ui_meta

UI_DIR = files("meshctx_service") / "ui" / "static"


class ModuleFiles(StaticFiles):
    """Static files with ``.js`` always served as ``text/javascript``: browsers refuse an ES module under any
    non-JavaScript type, and Python's ``mimetypes`` answers from the host's tables (on Windows, the registry)."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if str(full_path).endswith(".js"):
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        return response


def mount_ui(app: FastAPI) -> None:
    """Serve ``ui/static/index.html`` at ``/ui/`` (``/ui`` redirects there, so relative module URLs resolve) and the
    form's vocabulary at ``/ui/meta.json``."""

    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui/meta.json", include_in_schema=False)
    async def ui_meta_json() -> JSONResponse:
        return JSONResponse(ui_meta())

    app.mount("/ui", ModuleFiles(directory=str(UI_DIR), html=True), name="ui")
