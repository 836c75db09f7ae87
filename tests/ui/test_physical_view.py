"""The viewer's physical view in headless Chromium against a live server: the form's topology placed by
``POST /v1/place`` on a generated or pasted cluster, nodes grouped by leaf and NVLink domain, GPUs coloured by
each axis's groups (checked against ``MeshPlan.groups``), and the crossings table (checked against ``place``)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from meshctx import ParallelismSizes, plan_mesh
from meshctx.place import Node, Topology, place
from tests.support.servers import LiveServer

TIMEOUT_MS = 15_000
DOC_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "img" / "placement.png"
TIERS = ("node", "nvlink_domain", "leaf", "spine")


@pytest.fixture
def page(browser: Any, ui_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "status of 422" not in msg.text and "status of 401" not in msg.text
            else None
        ),
    )
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def open_form(page: Any, server: LiveServer, **params: object) -> None:
    page.goto(f"{server.url}/ui/#{urlencode(params)}")
    page.wait_for_selector("#verdict[data-state=valid]")


def place_in_page(page: Any, state: str = "valid") -> Any:
    page.click("#p-place")
    page.wait_for_selector(f"#p-status[data-state={state}]")
    return page.evaluate("() => meshPhysical.result")


def uniform(nodes: int, gpus: int, per_domain: int, per_leaf: int) -> Topology:
    """What the viewer generates: node1.., NVLink domains and leaves in index order, one spine."""
    return Topology.of(
        [Node(f"node{i + 1}", gpus, f"nvl{i // per_domain}", f"leaf{i // per_leaf}", "spine0") for i in range(nodes)]
    )


def swatches(page: Any) -> list[dict[str, Any]]:
    """Every GPU square: its rank, group, node, NVLink domain and leaf box."""
    result: list[dict[str, Any]] = page.evaluate(
        """() => [...document.querySelectorAll('#p-racks .p-gpu')].map((s) => ({
            rank: Number(s.dataset.rank), group: s.dataset.group === undefined ? null : Number(s.dataset.group),
            node: s.closest('.p-node').dataset.node, nodeRank: Number(s.closest('.p-node').dataset.nodeRank),
            domain: s.closest('.p-domain').dataset.domain, leaf: s.closest('.p-leaf').dataset.leaf,
            colour: s.style.backgroundColor }))"""
    )
    return result


def test_uniform_cluster_is_placed_drawn_and_coloured(page: Any, ui_server: LiveServer) -> None:
    open_form(page, ui_server, world_size=64, gpus_per_node=4, nvlink_domain=16, tp_size=8, pp_size=2)
    page.fill("#p-leaf", "8")
    result = place_in_page(page)
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, pp_size=2), world_size=64)
    topology = uniform(16, 4, 4, 8)
    assert result == place(plan, topology).to_dict()
    assert result["axes"]["tp"]["crossing"] == {"node": 8, "nvlink_domain": 0, "leaf": 0, "spine": 0}
    assert result["baselines"]["lexicographic"]["tp"]["crossing"]["nvlink_domain"] > 0  # node10 sorts before node2

    # the table: one row per axis, cells as "node / nvlink / leaf / spine"
    rows = page.evaluate(
        "() => [...document.querySelectorAll('#p-table tbody tr')].map((r) =>"
        " [...r.children].map((c) => c.textContent))"
    )
    assert [row[0] for row in rows] == list(result["axes"])

    def cells(crossing: dict[str, int]) -> str:
        return " / ".join(str(crossing[t]) for t in TIERS)

    for axis, groups, lexi, natural, ours, bound in rows:
        entry = result["axes"][axis]
        assert groups == str(entry["groups"]) and ours == cells(entry["crossing"])
        assert bound == cells(entry["lower_bound"])
        assert lexi == cells(result["baselines"]["lexicographic"][axis]["crossing"])
        assert natural == cells(result["baselines"]["natural"][axis]["crossing"])
    assert page.locator("#p-table tr[data-axis=tp] td.better").count() == 1  # meshctx beats hostname order

    # the drawing: every GPU once, each node inside its own NVLink domain and leaf, node ranks as the order says
    drawn = swatches(page)
    assert sorted(s["rank"] for s in drawn) == list(range(64))
    by_name = topology.by_name()
    for square in drawn:
        node = by_name[square["node"]]
        assert square["domain"] == node.nvlink_domain and square["leaf"] == node.leaf
        assert result["order"][square["nodeRank"]] == square["node"] and square["rank"] // 4 == square["nodeRank"]
    # colours: the groups of the chosen axis, exactly MeshPlan.groups; each tp group inside one NVLink domain
    for axis in ("tp", "pp"):
        page.check(f'#p-axes input[value="{axis}"]')
        page.wait_for_function(f"() => meshPhysical.axis === '{axis}'")
        drawn = {s["rank"]: s for s in swatches(page)}
        seen: set[int] = set()
        for group in plan.groups(axis):
            ids = {drawn[r]["group"] for r in group}
            colours = {drawn[r]["colour"] for r in group}
            assert len(ids) == 1 and len(colours) == 1 and not ids & seen, (axis, group, ids)
            seen |= ids
            if axis == "tp":
                assert len({drawn[r]["domain"] for r in group}) == 1


def test_pasted_topology_allocation_and_refusals(page: Any, ui_server: LiveServer, tmp_path: Path) -> None:
    open_form(page, ui_server, world_size=16, gpus_per_node=4, tp_size=8)
    nodes = [Node(f"gpu-{i:02d}", 4, f"rack{i % 2}", "leafA", None) for i in range(1, 9)]
    page.check("#physical [name=phys_source][value=pasted]")
    page.fill("#p-topology", json.dumps(Topology.of(nodes).to_dict()))
    page.fill("#p-nodes", "gpu-[01-04]")
    result = place_in_page(page)
    assert sorted(result["order"]) == ["gpu-01", "gpu-02", "gpu-03", "gpu-04"]
    assert result["axes"]["tp"]["crossing"]["nvlink_domain"] == 0
    assert page.locator("#p-racks .p-domain").count() == 2 and page.locator("#p-racks .p-node").count() == 4

    page.fill("#p-nodes", "gpu-[01-03],ghost")  # a placement problem: the service's message, no drawing
    place_in_page(page, "error")
    assert "ghost" in page.text_content("#p-status") and page.locator("#p-result").is_hidden()
    page.fill("#p-topology", '{"nodes": [{"name": "a", "gpus": "four"}]}')  # malformed: a 422 naming the field
    place_in_page(page, "error")
    assert "topology.nodes[0].gpus" in page.text_content("#p-status")
    page.fill("#p-topology", "{not json")
    place_in_page(page, "error")
    assert "not JSON" in page.text_content("#p-status")

    # a file loads into the panel
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(Topology.of(nodes[:4]).to_dict()))
    page.set_input_files("#p-file", str(path))
    page.wait_for_function("() => document.querySelector('#p-topology').value.includes('gpu-04')")
    page.fill("#p-nodes", "")
    assert sorted(place_in_page(page)["order"]) == ["gpu-01", "gpu-02", "gpu-03", "gpu-04"]


def test_screenshot(browser: Any, ui_server: LiveServer, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    open_form(page, ui_server, world_size=128, gpus_per_node=4, nvlink_domain=32, tp_size=8, ep_size=4)
    page.fill("#p-leaf", "16")
    place_in_page(page)
    page.check('#p-axes input[value="tp"]')
    shot = artifacts / "placement.png"
    page.locator("#physical").screenshot(path=str(shot))
    context.close()
    assert shot.stat().st_size > 10_000
    if os.environ.get("MESHCTX_REFRESH_DOC_IMAGES"):  # the image docs/placement.md shows
        shutil.copyfile(shot, DOC_IMAGE)
