"""The topology viewer end to end: headless Chromium against a live uvicorn server on loopback.

Every expectation about the mesh comes from ``meshctx.plan`` computed here, and the viewer's client-side
groups are also compared with the server's ``/v1/layout?groups=true``."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from meshctx.client import MeshctxClient
from meshctx.config import ParallelismSizes
from meshctx.plan import ClusterShape, MeshPlan, plan_mesh
from meshctx.plan.request import TopologyRequest
from tests.support.servers import LiveServer

TIMEOUT_MS = 10_000
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture
def page(browser: Any, ui_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    offsite: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and not refused(msg.text) else None)
    page.on("request", lambda req: None if req.url.startswith((ui_server.url, "data:")) else offsite.append(req.url))
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()
    assert not errors, f"the page logged errors: {errors}"
    assert not offsite, f"the page reached beyond the service: {offsite}"


def refused(console_text: str) -> bool:
    """Chromium logs every 4xx answer; 422 (malformed input) and 401 (no token) are answers the page handles."""
    return console_text.startswith("Failed to load resource") and any(
        f"status of {c}" in console_text for c in (401, 422)
    )


def open_viewer(page: Any, server: LiveServer, **params: object) -> None:
    query = urlencode({key: value for key, value in params.items()})
    page.goto(f"{server.url}/ui/#{query}" if query else f"{server.url}/ui")
    page.wait_for_selector("#verdict[data-state=valid], #verdict[data-state=invalid]")


def wait_verdict(page: Any, state: str) -> str:
    page.wait_for_selector(f"#verdict[data-state={state}]")
    return str(page.text_content("#verdict"))


def choose_axis(page: Any, axis: str) -> None:
    page.check(f'#axis-picker input[value="{axis}"]')
    page.wait_for_selector(f'#grid[data-axis="{axis}"]', state="attached")  # hidden in the blocks view


def field_messages(page: Any, input_id: str) -> str:
    return str(page.locator(".field", has=page.locator(f"#{input_id}")).locator(".msgs").inner_text())


def pixel(page: Any, x: float, y: float) -> str:
    """The canvas colour at CSS pixel (x, y) as ``#RRGGBB``."""
    return str(
        page.evaluate(
            """([x, y]) => {
                const c = document.getElementById('grid');
                const r = c.width / parseFloat(c.style.width);
                const d = c.getContext('2d').getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data;
                return '#' + [d[0], d[1], d[2]].map(v => v.toString(16).padStart(2, '0')).join('').toUpperCase();
            }""",
            [x, y],
        )
    )


def the_plan(strategy: str, world: int, *, gpn: int | None = None, nvlink: int | None = None, **sizes: int) -> MeshPlan:
    cluster = ClusterShape(gpus_per_node=gpn, nvlink_domain=nvlink) if gpn else None
    return plan_mesh(strategy, ParallelismSizes(**sizes), world_size=world, cluster=cluster)


# ---------------------------------------------------------------------------------------------- serving
def test_ui_is_served_from_the_package(ui_server: LiveServer) -> None:
    from importlib.resources import files

    shipped = files("meshctx_service") / "ui" / "static"
    redirect = httpx.get(f"{ui_server.url}/ui", timeout=5)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/ui/"
    modules = sorted(f"js/{m.name}" for m in (shipped / "js").iterdir() if m.name.endswith(".js"))
    assert "js/main.js" in modules and "js/layout.js" in modules
    # ES modules load only under a JavaScript type; text/javascript is the one the HTML standard names.
    assets = [("", "text/html"), ("style.css", "text/css"), *((m, "text/javascript") for m in modules)]
    for name, kind in assets:
        response = httpx.get(f"{ui_server.url}/ui/{name}", timeout=5)
        assert response.status_code == 200 and kind in response.headers["content-type"], name
        assert response.text == (shipped / (name or "index.html")).read_text()
    assert "/ui" not in str(httpx.get(f"{ui_server.url}/openapi.json", timeout=5).json()["paths"])


# ---------------------------------------------------------------------------------------------- live validation
def test_problem_next_to_its_field_then_suggestion_makes_it_valid(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server)
    assert "Valid" in wait_verdict(page, "valid")
    assert page.get_attribute("#verdict", "aria-live") == "polite"

    page.fill("#f-tp_size", "3")
    assert wait_verdict(page, "invalid").startswith("Invalid: 1 problem")
    world_msgs = field_messages(page, "f-world_size")
    assert "world_size 64 is not divisible by tp·cp·pp = 3·1·1 = 3" in world_msgs and "Fix:" in world_msgs
    assert "world_size_not_divisible" in field_messages(page, "f-tp_size")  # a pointer from every field it names
    assert page.get_attribute("#f-tp_size", "aria-invalid") == "true"
    described = page.get_attribute("#f-tp_size", "aria-describedby")
    assert described and "world_size 64" in str(page.text_content(f"#{described}"))

    page.click("#model-shape summary")
    page.fill("#f-num_attention_heads", "32")
    page.wait_for_selector('.problem[data-code="heads_not_divisible"]')
    assert "num_attention_heads 32 cannot be split evenly over tp_size 3" in field_messages(
        page, "f-num_attention_heads"
    )

    suggestions = page.locator("button.suggestion")
    assert suggestions.count() >= 1
    first = str(suggestions.first.text_content())
    assert "tp 3→" in first
    suggestions.first.click()
    assert "Valid" in wait_verdict(page, "valid")
    applied = int(page.input_value("#f-tp_size"))
    assert f"tp 3→{applied}" in first and 32 % applied == 0
    assert page.locator(".problem.error").count() == 0
    assert page.locator("#f-tp_size[aria-invalid]").count() == 0
    assert f"tp_size={applied}" in page.url


def test_malformed_input_is_refused_next_to_its_field(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server)
    page.check('input[name="world_mode"][value="nodes"]')
    page.fill("#f-nnodes", "2:x")
    assert "Request not accepted (422)" in wait_verdict(page, "invalid")
    assert "nnodes" in field_messages(page, "f-nnodes")
    assert page.is_hidden("#grid")
    page.fill("#f-nnodes", "2:4")
    assert "Valid" in wait_verdict(page, "valid")
    assert "Node range: 16 ✓, 24 ✓, 32 ✓" in str(page.text_content("#mesh-info"))


def test_warnings_flag_only_tp_cp_ep_leaving_a_node(page: Any, ui_server: LiveServer) -> None:
    """Axes are flagged exactly where the service's answer warns (tp and ep groups leaving their node, or their NVLink
    domain when one is given): dp-like axes and pp span nodes by design and show a plain node count."""
    open_viewer(page, ui_server, world_size=64, gpus_per_node=8, nvlink_domain=8, tp_size=16)
    wait_verdict(page, "valid")
    assert "spans 2 NVLink domains" in field_messages(page, "f-tp_size")
    plan = the_plan("fsdp2", 64, gpn=8, nvlink=8, tp_size=16)
    spans = plan.to_dict()["cluster"]["spans"]  # type: ignore[index]
    leaving = {axis for axis, span in spans.items() if span["nodes"] > 1 or span["nvlink_domains"] > 1}
    assert {"tp", "dp_shard", "dp"} <= leaving
    assert flagged_axes(page) == leaving & {"tp", "cp", "ep"} == {"tp"}
    assert "⚠ spans 2 NVLink domains" in str(page.text_content('#axis-picker label:has(input[value="tp"])'))
    dp_label = str(page.text_content('#axis-picker label:has(input[value="dp_shard"])'))
    assert "⚠" not in dp_label and "4 nodes" in dp_label

    # The usual layout: tp inside a node, dp across all of them: nothing is flagged at all.
    open_viewer(page, ui_server, world_size=64, gpus_per_node=8, tp_size=8)
    wait_verdict(page, "valid")
    page.wait_for_selector('#axis-picker input[value="tp"]')
    assert flagged_axes(page) == set()
    assert "⚠" not in str(page.text_content("#axis-picker"))
    assert "8 nodes" in str(page.text_content('#axis-picker label:has(input[value="dp_shard"])'))
    page.evaluate("() => meshViewer.select(9)")
    page.wait_for_selector('#details[data-rank="9"]')
    assert "⚠" not in str(page.text_content("#details"))
    assert str(page.text_content('#details tr[data-axis="dp_shard"] td')) == "dp_shard (8 nodes)"


def test_the_flags_are_the_services_warnings_inside_an_nvlink_domain(page: Any, ui_server: LiveServer) -> None:
    """NVL72: a tp group of 8 over two 4-GPU nodes stays inside its 72-GPU NVLink domain. The service does not warn
    (nor does the CLI), so the viewer flags nothing; the node count is still shown."""
    request = TopologyRequest(
        world_size=144, sizes=ParallelismSizes(tp_size=8), cluster=ClusterShape(gpus_per_node=4, nvlink_domain=72)
    )
    assert request.validate().warnings == ()
    open_viewer(page, ui_server, world_size=144, gpus_per_node=4, nvlink_domain=72, tp_size=8)
    wait_verdict(page, "valid")
    page.wait_for_selector('#axis-picker input[value="tp"]')
    assert flagged_axes(page) == set()
    tp_label = str(page.text_content('#axis-picker label:has(input[value="tp"])'))
    assert "⚠" not in tp_label and "2 nodes" in tp_label


def test_a_warnings_outline_goes_when_the_warning_does(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server, world_size=64, gpus_per_node=8, tp_size=16)
    wait_verdict(page, "valid")
    assert page.locator(".field[data-severity=warning]").count() >= 1
    page.fill("#f-tp_size", "8")
    page.wait_for_function("() => !document.querySelector('#f-tp_size').closest('.field').querySelector('.problem')")
    wait_verdict(page, "valid")
    assert page.locator(".field[data-severity]").count() == 0
    assert page.locator("[aria-describedby]").count() == 0


def flagged_axes(page: Any) -> set[str]:
    flagged = page.locator("#axis-picker label[data-warn]")
    return {str(flagged.nth(i).locator("input").get_attribute("value")) for i in range(flagged.count())}


def test_an_invalid_topology_clears_the_mesh_pane_and_says_why(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server, world_size=64, gpus_per_node=8, tp_size=4, axis="tp", rank=5)
    wait_verdict(page, "valid")
    page.wait_for_selector('#details[data-rank="5"]')
    assert page.locator("#group-list li[data-group]").count() == 16
    page.fill("#f-tp_size", "3")
    wait_verdict(page, "invalid")
    # Nothing of the previous mesh stays: no picker, grid, details, groups or legend; the pane says why instead.
    assert page.evaluate("() => meshViewer.plan") is None
    for selector in ("#axis-picker", "#grid", "#details", "#group-list", "#legend", "#f-goto"):
        assert page.is_hidden(selector), selector
    assert page.locator("#axis-picker input, #details tr, #group-list li, #legend li").count() == 0
    why = str(page.text_content("#mesh-empty"))
    assert page.is_visible("#mesh-empty")
    assert why.startswith("No mesh: this topology is invalid.")
    assert "world_size 64 is not divisible by tp·cp·pp = 3·1·1 = 3" in why and "Apply a suggestion" in why
    page.fill("#f-tp_size", "4")
    wait_verdict(page, "valid")
    assert page.is_hidden("#mesh-empty") and page.is_visible("#grid")
    assert page.locator("#group-list li[data-group]").count() == 16


def test_controls_and_suggestions_are_above_the_fold_at_1280x800(browser: Any, ui_server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    for params in ({"world_size": 64, "gpus_per_node": 8, "tp_size": 3}, {"world_size": 64, "gpus_per_node": 8}):
        open_viewer(page, ui_server, **params)
        boxes = page.evaluate(
            """() => [...document.querySelectorAll(
                '#topology fieldset input, #topology fieldset select, #topology summary, button.suggestion,'
                + ' #axis-picker input, #f-goto')]
              .filter(e => e.checkVisibility())
              .map(e => [e.id || e.name || e.textContent, e.getBoundingClientRect().bottom])"""
        )
        assert len(boxes) > 10
        below = [name for name, bottom in boxes if bottom > 800]
        assert below == [], f"below the fold at 1280×800 ({params}): {below}"
    # The invalid case above offered suggestions, and they were among the controls checked.
    open_viewer(page, ui_server, world_size=64, gpus_per_node=8, tp_size=3)
    assert page.locator("button.suggestion").count() >= 1
    assert page.locator("button.suggestion").first.bounding_box()["y"] < 300
    context.close()


def test_the_legend_says_what_colours_and_patterns_mean(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server, world_size=512, gpus_per_node=8, nvlink_domain=16, tp_size=4, axis="tp")
    wait_verdict(page, "valid")
    legend = page.locator("#legend")
    assert legend.is_visible()
    colour = str(legend.locator('li[data-key="colour"]').text_content())
    assert "one tp group (128 groups of 4 GPUs · one group spans 1 node)" in colour
    patterns = str(legend.locator('li[data-key="patterns"]').text_content())
    assert "groups 8–15 striped" in patterns and "groups 16–23 dotted" in patterns
    assert "groups 24–31 cross-hatched" in patterns and "styles repeat" in patterns
    assert "NVLink domain of 16 GPUs" in str(legend.locator('li[data-key="nvlink"]').text_content())
    # The legend's styles are the picture's: group 8 is drawn striped, group 16 dotted.
    assert page.evaluate("() => [8, 16, 24].map(g => meshViewer.styleOf(g).pattern)") == ["stripes", "dots", "cross"]
    choose_axis(page, "dp")
    assert page.locator('#legend li[data-key="patterns"]').count() == 0  # 4 dp groups: colours alone
    assert "4 groups of 128 GPUs" in str(page.text_content('#legend li[data-key="colour"]'))


# ---------------------------------------------------------------------------------------------- groups
CASES = [
    pytest.param("fsdp2", 32, 8, {"tp_size": 2, "pp_size": 2, "cp_size": 2, "ep_size": 4}, id="fsdp2-tp-pp-cp-ep"),
    pytest.param("fsdp2", 64, 8, {"tp_size": 4, "dp_replicate_size": 2}, id="fsdp2-hsdp"),
    pytest.param("megatron_fsdp", 16, 4, {"tp_size": 2, "cp_size": 2}, id="megatron-cp"),
]


@pytest.mark.parametrize(("strategy", "world", "gpn", "sizes"), CASES)
def test_axis_colours_match_the_plan(
    page: Any, ui_server: LiveServer, strategy: str, world: int, gpn: int, sizes: dict[str, int]
) -> None:
    plan = the_plan(strategy, world, gpn=gpn, **sizes)
    body = {"strategy": strategy, "world_size": world, "sizes": sizes, "cluster": {"gpus_per_node": gpn}}
    served = httpx.post(f"{ui_server.url}/v1/layout?groups=true", json=body, timeout=10).json()["groups"]
    open_viewer(page, ui_server, strategy=strategy, world_size=world, gpus_per_node=gpn, **sizes)
    wait_verdict(page, "valid")
    picker = page.locator("#axis-picker input[name=axis]")
    assert [picker.nth(i).get_attribute("value") for i in range(picker.count())] == list(plan.layouts)
    for axis in plan.layouts:
        choose_axis(page, axis)
        shown = page.evaluate("() => meshViewer.groups()")
        assert shown == plan.groups(axis) == served[axis], axis
        # The picture: every GPU's cell has the colour of its group, and groups of one colour differ in pattern.
        styles = page.evaluate(
            "() => { const v = meshViewer, p = v.plan; const out = [];"
            " for (let r = 0; r < p.world_size; r++) out.push([v.styleOf(v.groupOf(r)), v.cellRect(r)]); return out; }"
        )
        for group_index, members in enumerate(plan.groups(axis)):
            for rank in members:
                style, rect = styles[rank]
                assert style == page.evaluate("g => meshViewer.styleOf(g)", group_index)
                if style["pattern"] == "solid":
                    assert pixel(page, rect["x"] + 3, rect["y"] + 3) == style["colour"], (axis, rank)
        listed = page.locator("#group-list li[data-group]")
        assert listed.count() == min(64, len(plan.groups(axis)))
        first = ", ".join(map(str, plan.groups(axis)[0]))
        assert str(listed.first.text_content()).strip() == f"group 0: {first}"


def test_selecting_a_rank_shows_its_groups(page: Any, ui_server: LiveServer) -> None:
    sizes = {"tp_size": 2, "pp_size": 2, "ep_size": 4}
    plan = the_plan("fsdp2", 32, gpn=8, nvlink=16, **sizes)
    open_viewer(page, ui_server, world_size=32, gpus_per_node=8, nvlink_domain=16, **sizes)
    wait_verdict(page, "valid")

    def details() -> dict[str, tuple[str, str]]:
        rows = page.locator("#details tbody tr")
        return {
            str(rows.nth(i).get_attribute("data-axis")): (
                str(rows.nth(i).locator("td").nth(2).text_content()),
                str(rows.nth(i).locator("td").nth(3).text_content()),
            )
            for i in range(rows.count())
        }

    def check(rank: int) -> None:
        page.wait_for_selector(f'#details[data-rank="{rank}"]')
        assert f"Rank {rank} (selected)" in str(page.text_content("#details h2"))
        facts = str(page.text_content("#details .facts"))
        assert facts == f"node {rank // 8} · local rank {rank % 8} · NVLink domain {rank // 16}"
        view = plan.rank_view(rank)
        expected = {
            axis: (str(view["coordinates"][axis]), ", ".join(map(str, members)))  # type: ignore[index]
            for axis, members in view["groups"].items()  # type: ignore[attr-defined]
        }
        assert details() == expected

    rect = page.evaluate("() => meshViewer.cellRect(13)")
    page.click("#grid", position={"x": rect["x"] + rect["w"] / 2, "y": rect["y"] + rect["h"] / 2})
    check(13)
    assert "rank=13" in page.url
    # Keyboard: the grid is focusable and arrows move between GPUs as drawn.
    page.focus("#grid")
    page.keyboard.press("ArrowRight")
    check(14)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    check(12)
    above_rect = page.evaluate("() => meshViewer.cellRect(12)")
    page.keyboard.press("ArrowDown")  # the GPU drawn below: node 3 sits under node 1, two node boxes per row
    check(28)
    below_rect = page.evaluate("() => meshViewer.cellRect(28)")
    assert below_rect["y"] > above_rect["y"] and below_rect["x"] == above_rect["x"]
    page.keyboard.press("PageUp")
    check(20)
    assert "Rank" in str(page.text_content("#grid-announce"))
    page.keyboard.press("Escape")
    page.wait_for_function("() => meshViewer.selected === null")
    # Hovering shows a GPU without selecting it.
    rect = page.evaluate("() => meshViewer.cellRect(5)")
    page.mouse.move(
        rect["x"] + 5 + page.locator("#grid").bounding_box()["x"],
        rect["y"] + 5 + page.locator("#grid").bounding_box()["y"],
    )
    page.wait_for_selector('#details[data-rank="5"]')
    assert "(selected)" not in str(page.text_content("#details h2"))


# ---------------------------------------------------------------------------------------------- URL state
def test_state_round_trips_through_the_url(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server)
    page.check('input[name="world_mode"][value="nodes"]')
    page.fill("#f-nnodes", "4")
    page.select_option("#f-strategy", "fsdp2")
    page.fill("#f-tp_size", "4")
    page.fill("#f-pp_size", "2")
    page.click("#model-shape summary")
    page.fill("#f-num_hidden_layers", "32")
    verdict = wait_verdict(page, "valid")
    choose_axis(page, "pp")
    rect = page.evaluate("() => meshViewer.cellRect(5)")
    page.click("#grid", position={"x": rect["x"] + 4, "y": rect["y"] + 4})
    page.wait_for_selector('#details[data-rank="5"]')
    url = page.url
    assert "mode=nodes" in url and "nnodes=4" in url and "axis=pp" in url and "rank=5" in url

    fresh = page.context.new_page()
    fresh.goto(url)
    fresh.wait_for_selector('#details[data-rank="5"]')
    assert fresh.text_content("#verdict") == verdict
    assert fresh.is_checked('input[name="world_mode"][value="nodes"]')
    for field, value in {"f-nnodes": "4", "f-tp_size": "4", "f-pp_size": "2", "f-num_hidden_layers": "32"}.items():
        assert fresh.input_value(f"#{field}") == value
    assert fresh.is_checked('#axis-picker input[value="pp"]')
    assert fresh.url == url
    fresh.close()


def test_a_new_url_is_checked_before_the_verdict_reads_valid(page: Any, ui_server: LiveServer) -> None:
    """Opening another topology's URL in the same tab shows "Checking…" until that topology is planned: never the
    previous verdict over the previous mesh (validation is slowed down here so the answer arrives late)."""
    open_viewer(page, ui_server, world_size=8, gpus_per_node=8, tp_size=2)
    assert "on 8 GPUs" in wait_verdict(page, "valid")

    def slowly(route: Any) -> None:
        time.sleep(0.5)
        route.continue_()

    page.route("**/v1/validate", slowly)
    open_viewer(page, ui_server, world_size=64, gpus_per_node=8, tp_size=4)
    assert "on 64 GPUs" in str(page.text_content("#verdict"))
    assert page.evaluate("() => meshViewer.plan.world_size") == 64
    assert page.evaluate("() => meshViewer.axis") == "tp"


# ---------------------------------------------------------------------------------------------- scale
def test_4096_gpus_draw_every_gpu_and_bigger_worlds_become_blocks(page: Any, ui_server: LiveServer) -> None:
    # How fast it draws (first paint, axis switches, hover redraws) is bench/bench_viewer.py's to measure.
    open_viewer(page, ui_server, world_size=4096, gpus_per_node=8, tp_size=8, pp_size=4)
    wait_verdict(page, "valid")
    page.wait_for_selector('#grid[data-mode="gpus"][data-cells="4096"][data-axis="tp"]')
    for axis in ("dp", "pp", "tp"):
        choose_axis(page, axis)
        assert float(str(page.get_attribute("#grid", "data-render-ms"))) >= 0, axis  # it drew, and said how long
    plan = the_plan("fsdp2", 4096, gpn=8, tp_size=8, pp_size=4)
    assert page.evaluate("() => meshViewer.groups('dp').length") == len(plan.groups("dp"))

    # Above 4096 GPUs the mesh is nested blocks (test_big_meshes_are_nested_blocks_with_counts), at any size.
    for world in (16384, 131072, 1 << 20):
        page.fill("#f-world_size", str(world))
        page.wait_for_selector('#grid[data-mode="blocks"]', state="attached")
        wait_verdict(page, "valid")
        page.wait_for_function(f"() => meshViewer.plan && meshViewer.plan.world_size === {world}")
        assert page.is_visible("#blocks") and page.is_hidden("#grid")
        assert str(world) in str(page.text_content("#mesh-info"))
    # One rank can be inspected at any size, its groups computed from the compact layout.
    page.fill("#f-goto", "1000003")
    page.press("#f-goto", "Enter")
    page.wait_for_selector('#details[data-rank="1000003"]')
    big = the_plan("fsdp2", 1 << 20, gpn=8, tp_size=8, pp_size=4)
    tp_row = page.locator('#details tr[data-axis="tp"] td').nth(3)
    assert tp_row.text_content() == ", ".join(map(str, big.group("tp", 1000003)))


def blocks_levels(page: Any) -> list[tuple[str, int, bool]]:
    """The open path of the blocks view, outermost level first: (axis, size, whether it is shaded)."""
    return [
        (str(a), int(b), bool(c))
        for a, b, c in page.evaluate(
            "() => [...document.querySelectorAll('#blocks .level')]"
            ".map(l => [l.dataset.axis, Number(l.dataset.size), l.hasAttribute('data-on')])"
        )
    ]


def test_big_meshes_are_nested_blocks_with_counts(page: Any, ui_server: LiveServer) -> None:
    """131072 GPUs: the mesh as nested blocks, one level per mesh axis (outermost first) down to the GPUs of one node,
    nodes marked, counts everywhere; the chosen axis's levels shaded; any block opens on a click."""
    plan = the_plan("fsdp2", 131072, gpn=8, tp_size=8, pp_size=4)
    mesh = plan.to_dict()["device_mesh"]
    expected = [(a, n) for a, n in zip(mesh["axes"], mesh["shape"]) if n > 1]  # type: ignore[index]
    assert expected == [("pp", 4), ("dp_shard", 4096), ("tp", 8)]
    open_viewer(page, ui_server, world_size=131072, gpus_per_node=8, tp_size=8, pp_size=4, axis="tp")
    wait_verdict(page, "valid")
    page.wait_for_selector("#blocks .gpu")
    assert page.get_attribute("#grid", "data-mode") == "blocks" and page.is_hidden("#grid")
    assert blocks_levels(page) == [(a, n, a == "tp") for a, n in expected]
    # The node level: each dp_shard block is one node of 8 GPUs, drawn with a thick border.
    node_level = page.locator('#blocks .level[data-axis="dp_shard"]')
    assert node_level.get_attribute("data-nodes") == ""
    assert "dp_shard ×4096, each a node of 8" in str(node_level.locator(".level-head").first.text_content())
    assert "… 4093 more" in str(node_level.locator(":scope > .level-row > .more").text_content())
    closed = page.locator("#blocks > .level > .level-row > button.block")
    assert [str(closed.nth(i).text_content()) for i in range(closed.count())] == [
        f"pp {i}ranks {i * 32768}–{i * 32768 + 32767} · 4096 nodes" for i in (1, 2, 3)
    ]
    assert [str(t) for t in page.locator("#blocks .gpu").all_text_contents()] == [str(r) for r in range(8)]
    # The legend and shading follow the axis: dp_shard runs along the node level, one GPU per node.
    choose_axis(page, "dp_shard")
    assert blocks_levels(page) == [(a, n, a == "dp_shard") for a, n in expected]
    assert "16384 groups" not in str(page.text_content("#legend"))
    assert "32 groups of 4096 GPUs · one group spans 4096 nodes" in str(page.text_content("#legend"))
    # A closed block opens on a click: pp 2's first GPU is selected and its path is the open one.
    closed.nth(1).click()
    page.wait_for_selector('#details[data-rank="65536"]')
    assert "node 8192" in str(page.text_content("#blocks"))
    gpus = page.locator("#blocks .gpu")
    assert gpus.all_text_contents() == [str(r) for r in range(65536, 65544)]
    assert page.get_attribute('#blocks .gpu[data-rank="65536"]', "data-selected") == ""
    # Inspect rank: its node opens, its tp group (inside that node) is highlighted.
    choose_axis(page, "tp")
    page.fill("#f-goto", "100005")
    page.press("#f-goto", "Enter")
    page.wait_for_selector('#blocks .gpu[data-rank="100005"][data-selected]')
    highlighted = page.locator("#blocks .gpu[data-group]").all_text_contents()
    assert [int(r) for r in highlighted] == plan.group("tp", 100005)
    row = page.locator('#details tr[data-axis="dp_shard"] td').nth(3)
    assert str(row.text_content()).startswith(", ".join(map(str, plan.group("dp_shard", 100005)[:64])))

    # An NVLink domain of 64 nodes cuts dp_shard in two levels: the domains, then the nodes in one, named as such.
    open_viewer(page, ui_server, world_size=131072, gpus_per_node=8, nvlink_domain=512, tp_size=8, pp_size=4)
    wait_verdict(page, "valid")
    page.wait_for_selector("#blocks .gpu")
    choose_axis(page, "dp_shard")
    assert blocks_levels(page) == [("pp", 4, False), ("dp_shard", 64, True), ("dp_shard", 64, True), ("tp", 8, False)]
    heads = page.locator("#blocks .level-head").all_text_contents()
    assert heads[1].startswith("dp_shard ×64 (part of dp_shard ×4096), each an NVLink domain of 512 GPUs")
    assert heads[2].startswith("dp_shard ×64 (part of dp_shard ×4096), each a node of 8")
    nodes = page.locator("#blocks .level[data-nodes] > .level-row > button.block").all_text_contents()
    assert nodes[0] == "node 1ranks 8–15 · node 1"


# ---------------------------------------------------------------------------------------------- looks
def test_screenshots_light_and_dark(browser: Any, ui_server: LiveServer, artifacts: Path) -> None:
    shots = []
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        for world, sizes in (
            (8, {"tp_size": 2}),
            (64, {"tp_size": 4, "pp_size": 2}),
            (512, {"tp_size": 8, "pp_size": 4}),
        ):
            open_viewer(page, ui_server, world_size=world, gpus_per_node=8, **sizes)
            wait_verdict(page, "valid")
            choose_axis(page, "tp")
            page.evaluate("() => meshViewer.select(1)")
            page.wait_for_selector('#details[data-rank="1"]')
            path = artifacts / f"viewer-{world}-{scheme}.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(path)
        # What the issue showed unreadable: 131072 GPUs (nested blocks), and an invalid topology (empty pane, fixes).
        open_viewer(page, ui_server, world_size=131072, gpus_per_node=8, nvlink_domain=512, tp_size=8, pp_size=4)
        wait_verdict(page, "valid")
        page.evaluate("() => meshViewer.select(40003)")
        page.wait_for_selector('#blocks .gpu[data-rank="40003"][data-selected]')
        shots.append(artifacts / f"viewer-131072-{scheme}.png")
        page.screenshot(path=str(shots[-1]), clip={"x": 0, "y": 0, "width": 1280, "height": 800})
        open_viewer(page, ui_server, world_size=64, gpus_per_node=8, tp_size=3)
        wait_verdict(page, "invalid")
        shots.append(artifacts / f"viewer-invalid-{scheme}.png")
        page.screenshot(path=str(shots[-1]), clip={"x": 0, "y": 0, "width": 1280, "height": 800})
        colours = page.evaluate(
            "() => { const s = getComputedStyle(document.documentElement);"
            " const names = ['--bg', '--fg', '--error', '--warning', '--valid', '--muted'];"
            " return names.map(n => s.getPropertyValue(n).trim()); }"
        )
        bg, *inks = colours
        for ink in inks:
            assert contrast(ink, bg) >= 4.5, (scheme, ink, bg)
        assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == (
            "rgb(255, 255, 255)" if scheme == "light" else "rgb(21, 23, 26)"
        )
        context.close()
    assert all(path.stat().st_size > 10_000 for path in shots)
    if os.environ.get("MESHCTX_REFRESH_DOC_IMAGES"):  # the screenshots docs/ shows (README, docs/viewer.md)
        for shot, name in (
            ("64-light", ""),
            ("131072-light", "-131072"),
            ("invalid-light", "-invalid"),
            ("512-dark", "-dark"),
        ):
            shutil.copyfile(artifacts / f"viewer-{shot}.png", DOC_IMAGES / f"viewer{name}.png")


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#RRGGBB`` colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_control_is_labelled(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server)
    wait_verdict(page, "valid")
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input, select, textarea, canvas')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.closest('label'))"
        ".map(e => e.id || e.name)"
    )
    assert unlabelled == []
    assert page.get_attribute("#grid", "tabindex") == "0"


# ---------------------------------------------------------------------------------------------- launch and jobs
def test_launch_settings_are_copied(page: Any, ui_server: LiveServer) -> None:
    open_viewer(page, ui_server, world_size=16, gpus_per_node=8, tp_size=2)
    wait_verdict(page, "valid")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui_server.url)
    page.click('#launch button[data-target="torchrun"]')
    page.wait_for_function("() => document.querySelector('#launch textarea').value.length > 0")
    text = page.input_value("#launch textarea")
    assert "torchrun" in text and "--nnodes" in text and "--nproc-per-node" in text
    assert page.evaluate("() => navigator.clipboard.readText()") == text


def test_registered_jobs_are_listed_and_open_in_the_form(page: Any, ui_server: LiveServer) -> None:
    # The viewer's server listens on loopback without tokens, so it is the local tenant's registry.
    request = TopologyRequest(strategy="fsdp2", sizes=ParallelismSizes(tp_size=4, pp_size=2), world_size=32)
    with MeshctxClient(ui_server.url, token="") as client:
        client.register_job("viewer-job", request, labels={"from": "ui-test"})
        client.put_cluster("viewer-pool", nodes=4, gpus_per_node=8)
        client.register_job(
            "viewer-holder", {"strategy": "ddp", "world_size": 16}, cluster="viewer-pool", nodes="ui-n[1-2]"
        )
    open_viewer(page, ui_server, world_size=8, tp_size=1)
    assert page.is_visible("#jobs")
    page.click("#jobs [data-action=load-jobs]")
    entry = page.locator("#jobs .job-list button", has_text="viewer-job")
    entry.wait_for()
    assert "32 GPUs" in str(entry.text_content()) and "registered" in str(entry.text_content())
    holder = page.locator("#jobs .job-list button", has_text="viewer-holder")
    assert str(holder.text_content()).endswith("· holds ui-n1, ui-n2 on viewer-pool")  # which job holds which node
    entry.click()
    page.wait_for_function("() => document.getElementById('f-world_size').value === '32'")
    assert page.input_value("#f-tp_size") == "4" and page.input_value("#f-pp_size") == "2"
    wait_verdict(page, "valid")
