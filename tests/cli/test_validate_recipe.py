"""``meshctx validate --recipe FILE``: the strategy and sizes of a training recipe's ``distributed:`` section (NeMo's
YAML recipes), the world from the flags; a contradicting flag or an unreadable section is a usage error (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from meshctx import ParallelismSizes, plan_mesh

ROOT = Path(__file__).resolve().parents[2]

#: Shaped as NeMo 0.7.0's MoE fine-tuning recipes are (other sections elided).
MOE_RECIPE = """\
step_scheduler:
  global_batch_size: 32
  local_batch_size: 4
model:
  _target_: nemo_automodel.NeMoAutoModelForCausalLM.from_pretrained
  pretrained_model_name_or_path: Qwen/Qwen3-30B-A3B
distributed:
  strategy: fsdp2
  dp_size: none
  dp_replicate_size: 2
  tp_size: 1
  cp_size: 1
  pp_size: 1
  ep_size: 8
  sequence_parallel: false
  moe:
    reshard_after_forward: false
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'service'}"}
    return subprocess.run(
        [sys.executable, "-m", "meshctx.cli", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_a_recipe_gives_the_strategy_and_sizes(tmp_path: Path) -> None:
    recipe = tmp_path / "qwen3_moe.yaml"
    recipe.write_text(MOE_RECIPE)
    done = run("validate", "--recipe", str(recipe), "--nnodes", "2", "--nproc-per-node", "8", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    sizes = ParallelismSizes(dp_replicate_size=2, ep_size=8)
    assert body["plan"]["fingerprint"] == plan_mesh("fsdp2", sizes, world_size=16).fingerprint()
    assert body["plan"]["sizes"]["ep_shard"] == 2
    invalid = run("validate", "--recipe", str(recipe), "--world-size", "12")
    assert invalid.returncode == 1 and "ep_not_divisor" in invalid.stdout


def test_a_flag_that_contradicts_the_recipe_is_a_usage_error(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(MOE_RECIPE)
    done = run("validate", "--recipe", str(recipe), "--world-size", "16", "--tp", "2")
    assert done.returncode == 2
    assert "--tp 2 contradicts the recipe's tp_size: 1" in done.stderr
    agreeing = run("validate", "--recipe", str(recipe), "--world-size", "16", "--ep", "8", "--strategy", "fsdp2")
    assert agreeing.returncode == 0, agreeing.stderr


def test_an_unreadable_recipe_names_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("distributed:\n  strategy: fsdp3\n  tp: 2\n  cp_size: two\n")
    done = run("validate", "--recipe", str(bad), "--world-size", "8")
    assert done.returncode == 2
    for expected in ("distributed.strategy: unknown strategy 'fsdp3'", "distributed.tp: unknown key", "cp_size"):
        assert expected in done.stderr
    missing = run("validate", "--recipe", str(tmp_path / "nope.yaml"), "--world-size", "8")
    assert missing.returncode == 2 and "recipe: cannot read" in missing.stderr
    no_section = tmp_path / "model.yaml"
    no_section.write_text("model: {name: llama}\n")
    done = run("validate", "--recipe", str(no_section), "--world-size", "8")
    assert done.returncode == 2 and "has no distributed: section" in done.stderr
    aliased = tmp_path / "aliased.yaml"
    aliased.write_text("sizes: &s {tp_size: 2}\ndistributed: *s\n")
    done = run("validate", "--recipe", str(aliased), "--world-size", "8")
    assert done.returncode == 2 and "aliases" in done.stderr
