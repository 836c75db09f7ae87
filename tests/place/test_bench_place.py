"""``bench/bench_place.py`` runs at the largest size the docs quote (issue 27: at 16,384 nodes its cloud host
names repeated, so it placed fewer distinct nodes than it claimed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a process placing two 16,384-node clusters (about 10 s)


def test_bench_place_at_16384_nodes_has_distinct_hosts_and_places_both_clusters() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_place.py"), "--nodes", "16384", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| nvl72 | 16384 |", "| dgx | 16384 |"))]
    assert len(rows) == 2, done.stdout
