"""The worked examples of docs/placement.md reach their lower bounds where the issue asks, and the doc
shows exactly what ``python -m meshctx.place.examples`` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from meshctx.place.examples import EXAMPLES, dgx, markdown, nvl72
from tests.place.place_reference import reference_crossing

DOC = Path(__file__).resolve().parents[2] / "docs" / "placement.md"


def test_nvl72_with_cloud_hostnames_keeps_tp_in_its_rack_and_ep_at_the_bound() -> None:
    example = nvl72()
    placement = example.placement()
    tp, ep = placement.axes["tp"], placement.axes["ep"]
    # Hostname order puts most tp groups (2 nodes each) across two NVLink domains; meshctx puts none.
    for name in ("lexicographic", "natural"):
        assert placement.baselines[name]["tp"].nvlink_domain > tp.groups // 2
        assert placement.baselines[name]["ep"].nvlink_domain == ep.groups
    assert tp.crossing == tp.lower_bound and tp.crossing.nvlink_domain == 0
    assert ep.crossing == ep.lower_bound and ep.crossing.nvlink_domain == 2  # 2 racks hold only 12 and 14 nodes
    reported = {axis: entry.crossing.as_tuple() for axis, entry in placement.axes.items()}
    assert reported == reference_crossing(example.plan, example.topology, placement.order, 4)


def test_dgx_uneven_allocation_keeps_cp_and_ep_inside_leaves() -> None:
    example = dgx()
    placement = example.placement()
    for axis in ("tp", "cp", "ep"):
        assert placement.axes[axis].crossing == placement.axes[axis].lower_bound
    assert placement.axes["cp"].crossing.leaf == 0
    assert placement.baselines["lexicographic"]["cp"].leaf > 0  # dgx10 sorts before dgx2
    reported = {axis: entry.crossing.as_tuple() for axis, entry in placement.axes.items()}
    assert reported == reference_crossing(example.plan, example.topology, placement.order, 8)


def test_the_doc_shows_the_generated_tables() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "meshctx.place.examples"], capture_output=True, text=True, check=True
    ).stdout
    assert generated == "\n".join(markdown(build()) for build in EXAMPLES)
    assert generated in DOC.read_text(), "docs/placement.md is stale: paste `python -m meshctx.place.examples`"
