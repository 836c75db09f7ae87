"""Where a NeMo user's runtime choices meet meshctx: the device a backend gets, ``from_env`` with NeMo's configs,
and NeMo's mesh-building hook (which meshctx does not call)."""

from __future__ import annotations

import pytest
import torch.distributed as dist

import meshctx
from meshctx.runtime.job_env import LaunchEnvError
from meshctx.runtime.realize import device_type_for_backend
from tests.nemo.nemo_loader import load_nemo, meshctx_as_nemo_mesh
from tests.torch.test_from_env import rendered_env
from tests.torch.torch_worlds import fake_world

NEMO = load_nemo()


@pytest.mark.torch
@pytest.mark.parametrize("backend", ["gloo", "nccl", "cpu:gloo,cuda:nccl", "mpi", "ucc", "xccl", "hccl", "fake"])
def test_a_backend_gets_the_device_nemo_gives_it(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """NeMo's ``_mesh_device_type`` asks torch for the default group's backend; it is told ``backend``."""
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: backend)
    assert device_type_for_backend(backend) == NEMO.mesh_utils._mesh_device_type()


@pytest.mark.torch
def test_from_env_with_nemos_config_of_another_strategy_is_refused_before_any_group() -> None:
    from torch.distributed.distributed_c10d import _world

    env = rendered_env(2)  # an fsdp2 launch
    with fake_world(4, 1):
        before = _world.group_count
        with pytest.raises(LaunchEnvError, match="planned fsdp2 but strategy_config is a megatron_fsdp config"):
            meshctx.MeshContext.from_env(env, strategy_config=NEMO.config.MegatronFSDPConfig())
        assert _world.group_count == before
        ctx = meshctx.MeshContext.from_env(env, strategy_config=NEMO.config.FSDP2Config())
        assert ctx.fingerprint() == env["MESHCTX_FINGERPRINT"] and ctx.tp_size == 2


@pytest.mark.torch
def test_nemos_create_device_meshes_hook_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/nemo-compat.md: code that wraps ``mesh_utils._create_device_meshes`` has no effect with meshctx."""
    calls: list[object] = []

    def wrapped(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return original(*args, **kwargs)

    original = NEMO.mesh_utils._create_device_meshes
    monkeypatch.setattr(NEMO.mesh_utils, "_create_device_meshes", wrapped)
    with fake_world(8, 3):
        NEMO.config.DistributedSetup.build("fsdp2", NEMO.mesh.ParallelismSizes(tp_size=2))
        assert len(calls) == 1  # NeMo's own build goes through it
        with meshctx_as_nemo_mesh():
            setup = NEMO.config.DistributedSetup.build("fsdp2", NEMO.mesh.ParallelismSizes(tp_size=2))
        assert len(calls) == 1 and setup.mesh_context.tp_size == 2
