"""The default rendezvous port and the tier names are written once in the library and the service; every
other module imports them (issue 27: each was written three times and could drift)."""

from __future__ import annotations

import re
from pathlib import Path

from meshctx.launch.spec import DEFAULT_MASTER_PORT
from meshctx.place.topology import DEFAULT_LABELS, TIER_NAMES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "src" / "meshctx").rglob("*.py"), *(ROOT / "service" / "meshctx_service").rglob("*.py")])


def _where(pattern: str) -> list[str]:
    found = re.compile(pattern)
    return [
        str(path.relative_to(ROOT))
        for path in SOURCES
        for line in path.read_text(encoding="utf-8").splitlines()
        if found.search(line)
    ]


def test_the_default_rendezvous_port_is_written_once() -> None:
    assert DEFAULT_MASTER_PORT == 29500  # torchrun's own default
    assert _where(r"\b29500\b") == ["src/meshctx/launch/spec.py"]


def test_the_tier_names_are_written_once() -> None:
    assert TIER_NAMES == ("node", "nvlink_domain", "leaf", "spine")
    assert list(DEFAULT_LABELS) == list(TIER_NAMES)
    listed = r"""["']nvlink_domain["'],\s*["']leaf["'],\s*["']spine["']"""  # with or without "node" before
    assert _where(listed) == ["src/meshctx/place/topology.py"]
