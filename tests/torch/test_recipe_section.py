"""The recipe layer: a ``distributed:`` section becomes typed configs, or every problem at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshctx import FSDP2Config, MegatronFSDPConfig, ParallelismSizes, Strategy
from meshctx.recipe import RecipeError, load_recipe, parse_distributed
from tests.torch.torch_worlds import fake_world

RECIPE = """
model: {name: llama}
distributed:
  strategy: fsdp2
  dp_size: none
  dp_replicate_size: 2
  tp_size: 2
  cp_size: 1
  pp_size: 2
  ep_size: 2
  sequence_parallel: true
  activation_checkpointing: false
  pipeline:
    pp_schedule: 1f1b
    pp_microbatch_size: 1
  moe:
    reshard_after_forward: false
"""


def test_yaml_section_becomes_typed_objects(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    recipe = load_recipe(path)
    assert recipe.strategy is Strategy.FSDP2
    assert recipe.strategy_config == FSDP2Config(sequence_parallel=True)
    assert recipe.sizes == ParallelismSizes(dp_size=None, dp_replicate_size=2, tp_size=2, pp_size=2, ep_size=2)
    assert recipe.pipeline == {"pp_schedule": "1f1b", "pp_microbatch_size": 1}
    assert recipe.moe == {"reshard_after_forward": False}
    assert recipe.plan(world_size=16).sizes.dp_shard == 2
    assert load_recipe(RECIPE) == recipe


def test_aliases_and_strategy_options() -> None:
    recipe = parse_distributed(
        {"strategy": "mfsdp", "cp_size": 2, "zero_dp_strategy": 2, "megatron_fsdp_unit_modules": ["a"]}
    )
    assert recipe.strategy_config == MegatronFSDPConfig(zero_dp_strategy=2, megatron_fsdp_unit_modules=["a"])
    assert parse_distributed(None).strategy is Strategy.FSDP2


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RecipeError) as err:
        parse_distributed(
            {
                "strategy": "fsdp2",
                "tp_sise": 2,
                "pp_size": "2",
                "dp_size": True,
                "sequence_parallel": "yes",
                "zero_dp_strategy": 3,
                "pipeline": [1, 2],
            }
        )
    errors = dict(err.value.errors)
    assert errors == {
        "tp_sise": "unknown key; did you mean 'tp_size'?",
        "pp_size": "must be an integer, got '2' (str)",
        "dp_size": "must be an integer or none, got True (bool)",
        "sequence_parallel": "must be bool, got 'yes' (str)",
        "zero_dp_strategy": "is an option of strategy megatron_fsdp, not of fsdp2",
        "pipeline": "must be a mapping of pipeline settings, got list",
    }
    assert "distributed.tp_sise" in str(err.value)


def test_unknown_strategy_suggests_the_nearest_name() -> None:
    with pytest.raises(RecipeError, match=r"unknown strategy 'fsdp'; did you mean 'fsdp2'\?"):
        parse_distributed({"strategy": "fsdp", "zero_dp_strategy": 3})


@pytest.mark.torch
def test_recipe_builds_the_context() -> None:
    with fake_world(16, 9):
        ctx = load_recipe(RECIPE).build()
        assert (ctx.pp_size, ctx.dp_replicate_size, ctx.dp_shard_size, ctx.tp_size, ctx.ep_size) == (2, 2, 2, 2, 2)


def test_recipe_and_package_import_without_torch() -> None:
    code = "import sys, meshctx, meshctx.recipe; assert 'torch' not in sys.modules, 'torch imported'"
    src = Path(__file__).resolve().parents[2] / "src"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env={"PYTHONPATH": str(src)})
