"""``meshctx.place`` is stdlib-only: it runs where torch and PyYAML cannot be imported."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
sys.modules["yaml"] = None
from meshctx import ParallelismSizes, plan_mesh
from meshctx.place import Node, Topology, place, topology_from_slurm_yaml
plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=16)
placement = place(plan, Topology.of([Node("b", 4, "d0"), Node("a", 4, "d1"), Node("c", 4, "d0"), Node("d", 4, "d1")]))
assert placement.axes["tp"].crossing.nvlink_domain == 0, placement.axes
try:
    topology_from_slurm_yaml("[]", gpus_per_node=4)
except ImportError as exc:
    assert "pip install pyyaml" in str(exc)
else:
    raise AssertionError("topology.yaml without PyYAML must say how to get it")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "yaml") and sys.modules[m] is not None)
assert not loaded, loaded
print("ok")
"""


def test_place_needs_neither_torch_nor_yaml() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
