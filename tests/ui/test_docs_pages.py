"""``/docs`` and ``/redoc`` render with no network beyond the service: headless Chromium against a live server,
every request that leaves loopback refused and recorded (an offline cluster's view of the pages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.servers import LiveServer

TIMEOUT_MS = 20_000
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def offline_page(browser: Any, ui_server: LiveServer) -> Iterator[tuple[Any, list[str]]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    blocked: list[str] = []

    def only_the_service(route: Any) -> None:
        url = route.request.url
        if url.startswith((ui_server.url, "data:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", only_the_service)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, blocked
    context.close()
    assert not errors, f"the page raised: {errors}"


def operations(server: LiveServer) -> list[tuple[str, str]]:
    schema = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    return [(method, path) for path, ops in schema["paths"].items() for method in ops if method in METHODS]


def test_swagger_ui_renders_every_operation_offline(offline_page: tuple[Any, list[str]], ui_server: LiveServer) -> None:
    page, blocked = offline_page
    expected = operations(ui_server)
    assert len(expected) > 5
    page.goto(f"{ui_server.url}/docs")
    page.wait_for_selector(".opblock")
    shown = page.evaluate(
        "() => [...document.querySelectorAll('.opblock')].map(b => ["
        " b.querySelector('.opblock-summary-method').textContent.toLowerCase(),"
        " b.querySelector('.opblock-summary-path').getAttribute('data-path')])"
    )
    assert sorted(map(tuple, shown)) == sorted(expected)
    assert "meshctx" in str(page.text_content(".info .title"))
    assert blocked == [], f"/docs reached beyond the service: {blocked}"
    html = httpx.get(f"{ui_server.url}/docs", timeout=5).text
    assert "cdn" not in html.lower() and "/docs/static/swagger-ui-bundle.js" in html


def test_redoc_renders_every_operation_offline(offline_page: tuple[Any, list[str]], ui_server: LiveServer) -> None:
    page, blocked = offline_page
    expected = operations(ui_server)
    page.goto(f"{ui_server.url}/redoc")
    page.wait_for_selector("[data-section-id^='operation/']")
    shown = page.locator("[data-section-id^='operation/'] h2").count()
    assert shown == len(expected)
    assert blocked == [], f"/redoc reached beyond the service: {blocked}"
    response = httpx.get(f"{ui_server.url}/redoc", timeout=5)
    assert "fonts.googleapis" not in response.text and "/docs/static/redoc.standalone.js" in response.text
    # ReDoc hard-codes a logo on its CDN: the page's policy keeps the browser from asking for it at all.
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_docs_assets_are_served_and_stay_out_of_the_schema(ui_server: LiveServer) -> None:
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css")):
        response = httpx.get(f"{ui_server.url}/docs/static/{name}", timeout=5)
        assert response.status_code == 200 and kind in response.headers["content-type"], name
        assert len(response.content) > 100_000, name
    paths = httpx.get(f"{ui_server.url}/openapi.json", timeout=5).json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
