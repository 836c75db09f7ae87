"""The topology viewer at ``/ui``: static files shipped in the package, served as they are (no build step)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = files("meshctx_service") / "ui"


def mount_ui(app: FastAPI) -> None:
    """Serve ``ui/index.html`` at ``/ui/`` (``/ui`` redirects there, so relative asset URLs resolve)."""

    @app.get("/ui", include_in_schema=False)
    async def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    app.mount("/ui", StaticFiles(directory=str(UI_DIR), html=True), name="ui")
