"""The viewer's ES modules against their Python sources, in headless Chromium: ``js/layout.js`` computes what
``meshctx.plan.layout.AxisLayout`` computes, and the form offers exactly the library's strategies and fields."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshctx.plan import ClusterShape, plan_mesh
from meshctx.plan.layout import AxisLayout
from meshctx.plan.model import MODEL_FIELDS
from meshctx.plan.sizes import SIZE_FIELDS, ParallelismSizes
from meshctx.plan.strategies import RULES, STRATEGY_ALIASES, Strategy
from tests.support.servers import LiveServer

TIMEOUT_MS = 10_000

#: Every axis of these plans is checked position by position (the last one samples positions: 2**20 GPUs).
PLANS = [
    ("fsdp2", 32, {"tp_size": 2, "pp_size": 2, "cp_size": 2, "ep_size": 4}),
    ("fsdp2", 64, {"tp_size": 4, "dp_replicate_size": 2}),
    ("fsdp2", 96, {"tp_size": 3, "pp_size": 2, "ep_size": 6}),
    ("megatron_fsdp", 16, {"tp_size": 2, "cp_size": 2}),
    ("ddp", 12, {}),
    ("fsdp2", 1 << 20, {"tp_size": 8, "pp_size": 4, "cp_size": 2, "ep_size": 16}),
]
FULL_CHECK_MAX_WORLD = 4096

# In the page: the module's answers for each case, in the shape the Python side builds (JSON text both ways:
# Playwright's own serialization of 10^5-element arrays takes seconds).
LAYOUT_JS = """async (text) => {
    const L = await import(new URL('js/layout.js', document.baseURI));
    const cases = JSON.parse(text);
    return JSON.stringify(cases.map(({layout, total, positions, full}) => {
        const part = full ? L.partition(layout, total) : null;
        return {
            size: L.size(layout),
            offsets: L.offsets(layout),
            local_index: positions.map((p) => L.localIndex(layout, p)),
            base: positions.map((p) => L.base(layout, p)),
            group_positions: positions.slice(0, 8).map((p) => L.groupPositions(layout, p)),
            complement: L.complement(layout, total),
            all_groups: full ? L.allGroups(layout, total) : null,
            partition: part && {ord: Array.from(part.ord), index: Array.from(part.index), count: part.count},
        };
    }));
}"""


@pytest.fixture
def page(browser: Any, ui_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{ui_server.url}/ui/")
    page.wait_for_selector("#verdict[data-state=valid]")
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def python_answers(layout: AxisLayout, total: int, positions: list[int], full: bool) -> dict[str, object]:
    groups = layout.all_groups(total) if full else None
    partition = None
    if groups is not None:
        ordinal = {p: g for g, members in enumerate(groups) for p in members}
        partition = {
            "ord": [ordinal[p] for p in range(total)],
            "index": [layout.local_index(p) for p in range(total)],
            "count": len(groups),
        }
    return {
        "size": layout.size,
        "offsets": layout.offsets(),
        "local_index": [layout.local_index(p) for p in positions],
        "base": [layout.base(p) for p in positions],
        "group_positions": [layout.group_positions(p) for p in positions[:8]],
        "complement": layout.complement(total).to_dict(),
        "all_groups": groups,
        "partition": partition,
    }


def test_layout_js_computes_what_axis_layout_computes(page: Any) -> None:
    rng = random.Random(12)
    cases, expected = [], []
    for strategy, world, sizes in PLANS:
        plan = plan_mesh(strategy, ParallelismSizes(**sizes), world_size=world, cluster=ClusterShape(gpus_per_node=8))
        full = world <= FULL_CHECK_MAX_WORLD
        positions = list(range(world)) if full else [*sorted(rng.sample(range(world), 512)), world - 1]
        for layout in plan.layouts.values():
            cases.append({"layout": layout.to_dict(), "total": world, "positions": positions, "full": full})
            expected.append(python_answers(layout, world, positions, full))
    shown = json.loads(page.evaluate(LAYOUT_JS, json.dumps(cases)))
    assert len(shown) == len(expected) > 20
    for case, js, py in zip(cases, shown, expected):
        assert js == py, case["layout"]


def test_layout_js_normalizes_and_refuses_as_axis_layout_does(page: Any) -> None:
    rng = random.Random(7)
    raw = [([], []), ([1, 1], [4, 1]), ([2, 4], [4, 1]), ([2, 1, 4], [4, 9, 1]), ([3, 2, 2], [4, 2, 1])]
    for _ in range(200):
        modes = range(rng.randint(1, 4))
        raw.append(([rng.choice([1, 1, 2, 3, 4]) for _ in modes], [rng.choice([1, 2, 3, 4, 6, 8, 12]) for _ in modes]))
    normalized = page.evaluate(
        "async (raw) => { const L = await import(new URL('js/layout.js', document.baseURI));"
        " return raw.map(([sizes, strides]) => L.of(sizes, strides)); }",
        raw,
    )
    assert normalized == [AxisLayout.of(sizes, strides).to_dict() for sizes, strides in raw]

    # Layouts the planner never builds: both twins refuse them with the same message.
    bad = [({"size": 4, "sizes": [2, 2], "strides": [1, 1]}, 8), ({"size": 4, "sizes": [4], "strides": [1]}, 6)]
    refused = page.evaluate(
        "async (bad) => { const L = await import(new URL('js/layout.js', document.baseURI));"
        " return bad.map(([layout, total]) => { try { L.complement(layout, total); return null; }"
        " catch (e) { return e.message; } }); }",
        bad,
    )
    for (layout, total), message in zip(bad, refused):
        with pytest.raises(ValueError) as error:
            AxisLayout(tuple(layout["sizes"]), tuple(layout["strides"])).complement(total)
        assert message == str(error.value)


def test_form_offers_the_library_strategies_and_fields(page: Any, ui_server: LiveServer) -> None:
    meta = httpx.get(f"{ui_server.url}/ui/meta.json", timeout=5).json()
    assert meta["strategies"] == [
        {
            "name": s.value,
            "aliases": sorted(a for a, t in STRATEGY_ALIASES.items() if t is s and a != s.value),
            "unsupported_sizes": list(RULES[s].unsupported),
        }
        for s in Strategy
    ]
    defaults = ParallelismSizes().to_dict()
    assert [(s["field"], s["default"]) for s in meta["sizes"]] == [(f, defaults[f]) for f in SIZE_FIELDS]
    assert meta["model_fields"] == list(MODEL_FIELDS)

    options = page.eval_on_selector_all("#f-strategy option", "os => os.map(o => o.value)")
    assert options == [s.value for s in Strategy]
    sizes = page.eval_on_selector_all(
        '[data-fields="sizes"] input', "es => es.map(e => [e.id, e.name, e.defaultValue, e.labels[0].textContent])"
    )
    opening = {"tp_size": "8"}  # the page opens on 64 GPUs with tp 8 (index.html data-initial)
    assert [s[:3] for s in sizes] == [
        [f"f-{f}", f, opening.get(f, "" if defaults[f] is None else str(defaults[f]))] for f in SIZE_FIELDS
    ]
    assert [s[3] for s in sizes] == ["tp", "pp", "cp", "ep", "dp (blank: inferred)", "dp_replicate (blank: 1)"]
    model = page.eval_on_selector_all('[data-fields="model"] input', "es => es.map(e => e.name)")
    assert model == [f"model.{name}" for name in MODEL_FIELDS]
