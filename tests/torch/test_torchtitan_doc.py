"""docs/torchtitan.md, run: a mesh laid out with torchtitan's degrees reads back to the plan's fingerprint, and the
meshes torchtitan's own ``build_mesh`` makes are refused with the message the page quotes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from torch.distributed.device_mesh import init_device_mesh

from meshctx import MeshContext
from tests.torch.torch_worlds import fake_world

DOC = Path(__file__).resolve().parents[2] / "docs" / "torchtitan.md"


@pytest.mark.torch
@pytest.mark.parametrize("rank", [0, 5, 15])
def test_the_pages_example_runs(rank: int) -> None:
    example = re.search(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert example is not None
    code = example.group(1).replace('init_device_mesh("cuda"', 'init_device_mesh("cpu"')
    with fake_world(16, rank):
        exec(compile(code, str(DOC), "exec"), {})


@pytest.mark.torch
def test_torchtitans_own_meshes_are_refused_as_the_page_says() -> None:
    with fake_world(16, 3):
        world = init_device_mesh("cpu", (16,), mesh_dim_names=("world",))
        if hasattr(world, "_unflatten"):  # torchtitan's meshes need torch 2.10 or later
            dense = world._unflatten(0, (1, 2, 4, 1, 2), ("pp", "dp_replicate", "dp_shard", "cp", "tp"))
            with pytest.raises(ValueError, match=r"root mesh has axes \['world'\], which are not a meshctx"):
                MeshContext.from_meshes(dense).fingerprint()
        older = init_device_mesh("cpu", (2, 4, 2), mesh_dim_names=("dp_replicate", "dp_shard", "tp"))
        with pytest.raises(ValueError, match="not a meshctx topology"):
            MeshContext.from_meshes(older).fingerprint()
