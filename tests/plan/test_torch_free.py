"""``import meshctx`` and the planner must work where torch cannot be imported at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
import meshctx
from meshctx import ParallelismSizes, plan_mesh
from meshctx.cli import main
plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=4), world_size=64)
assert plan.group("tp", 9) == list(range(8, 16))
assert main(["validate", "--world-size", "64", "--tp", "8", "--json"]) == 0
context = meshctx.MeshContext()  # a context without meshes needs no torch: NeMo's defaults
assert (context.tp_size, context.dp_size, context.pp_enabled) == (1, None, False)
try:
    meshctx.MeshContext.build(meshctx.FSDP2Config(), world_size=8)
except ImportError:
    pass
else:
    raise AssertionError("building meshes needs torch and must fail loudly without it")
loaded = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
assert loaded == ["torch"] and sys.modules["torch"] is None, loaded
print("ok")
"""


def test_planner_runs_without_torch() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'service'}"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")
