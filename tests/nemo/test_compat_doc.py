"""docs/nemo-compat.md stays complete: every refusal meshctx makes where NeMo does not (``OWN_REFUSALS``) has its
row quoting the sentence, and each request below — one per way meshctx and NeMo 0.7.0 part — is refused by meshctx
while NeMo builds or fails with another exception type, under the row it names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import meshctx.mesh
from meshctx import TopologyError
from meshctx.runtime.nemo_rules import OWN_REFUSALS
from tests.nemo.nemo_loader import load_nemo
from tests.nemo.nemo_worlds import outcome
from tests.torch.torch_worlds import fake_world

NEMO = load_nemo()
DOC = Path(__file__).resolve().parents[2] / "docs" / "nemo-compat.md"
ROWS = {m[0]: m[1] for m in re.findall(r"^\| `([a-z0-9-]+)` \|(.*)$", DOC.read_text(), flags=re.MULTILINE)}


def test_every_own_refusal_has_a_row_quoting_its_sentence() -> None:
    for row, sentence in OWN_REFUSALS.items():
        assert row in ROWS, f"docs/nemo-compat.md has no row `{row}`"
        quoted = sentence.split("{")[0].strip()
        assert quoted in ROWS[row].replace("\\", ""), f"row `{row}` does not quote {quoted!r}"


#: (row, strategy config class, sizes, build kwargs): on a job of 4, rank 1.
PARTINGS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("invalid-size", "FSDP2Config", {"tp_size": 0}, {}),
    ("non-int-size", "FSDP2Config", {"tp_size": None}, {}),
    ("non-int-size", "FSDP2Config", {"tp_size": "2"}, {}),
    ("non-int-size", "MegatronFSDPConfig", {"cp_size": 2.0}, {}),
    ("non-int-size", "FSDP2Config", {"dp_size": "2"}, {}),  # NeMo: TypeError
    ("non-int-size", "FSDP2Config", {"dp_size": 2.0}, {}),  # NeMo: AssertionError
    ("non-int-size", "FSDP2Config", {"tp_size": True}, {}),
    ("non-int-size", "DDPConfig", {"dp_replicate_size": "2"}, {}),
    ("partial-mesh", "FSDP2Config", {"dp_size": 1}, {}),
    ("partial-mesh", "FSDP2Config", {}, {"world_size": 2}),
    ("ddp-dp-size", "DDPConfig", {"dp_size": 3}, {}),
    ("cp-degrees", "FSDP2Config", {}, {"cp_ring_degree": 2}),  # cp = 1
    ("cp-degrees", "DDPConfig", {}, {"cp_ring_degree": 2}),
    ("cp-degrees", "FSDP2Config", {"cp_size": 4}, {"cp_ring_degree": 2, "cp_ulysses_degree": 3}),
    ("ddp-ranks", "DDPConfig", {}, {"ranks": [0, 1], "world_size": 4}),
    ("ddp-ranks", "DDPConfig", {}, {"ranks": [0, 0]}),
]


@pytest.mark.torch
@pytest.mark.parametrize(("row", "config", "sizes", "kwargs"), PARTINGS)
def test_each_parting_from_nemo_is_the_documented_one(
    row: str, config: str, sizes: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    assert row in ROWS, f"docs/nemo-compat.md has no row `{row}`"
    strategy = getattr(NEMO.config, config)()
    with fake_world(4, 1):
        theirs = outcome(lambda: NEMO.mesh.MeshContext.build(strategy, NEMO.mesh.ParallelismSizes(**sizes), **kwargs))
        ours = outcome(lambda: meshctx.mesh.MeshContext.build(strategy, NEMO.mesh.ParallelismSizes(**sizes), **kwargs))
    assert ours[0] == "error" and isinstance(ours[1], TopologyError) and isinstance(ours[1], ValueError)
    assert all(p.hint for p in ours[1].problems)
    if theirs[0] == "error":  # NeMo fails too, but not as meshctx does: another type or another message
        assert not isinstance(ours[1], type(theirs[1])) or not str(ours[1]).startswith(str(theirs[1]))
    sentences = [s.split("{")[0] for s in OWN_REFUSALS.values()]
    assert any(str(ours[1]).startswith(s) for s in sentences), ours[1]
