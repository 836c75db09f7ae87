"""Reading a launched job's environment (torch-free): the ``MESHCTX_*`` names every renderer writes read back to the
same plan, and a bad environment is one error naming every bad variable with its fix."""

from __future__ import annotations

import pytest

from meshctx.config import ParallelismSizes as P
from meshctx.launch import LaunchSpec, render
from meshctx.plan import plan_mesh
from meshctx.runtime.job_env import LaunchEnvError, read_launch_env

PLAN = plan_mesh("fsdp2", P(tp_size=8, pp_size=2, dp_replicate_size=2), world_size=64)
LAUNCH = {"nnodes": 8, "nproc_per_node": 8, "rdzv_endpoint": "head:29500", "accelerator": "H100"}


@pytest.mark.parametrize("target", ["torchrun", "slurm", "trainjob", "skypilot"])
def test_every_renderings_environment_reads_back_to_its_plan(target: str) -> None:
    env = render(target, PLAN, LaunchSpec(**LAUNCH)).env  # type: ignore[arg-type]
    launch = read_launch_env(env | {"WORLD_SIZE": "64"})
    assert launch.fingerprint == PLAN.fingerprint() == launch.plan().fingerprint()
    launch.check_fingerprint(PLAN.fingerprint())  # no error


def test_an_elastic_launch_has_no_fingerprint_and_infers_dp_from_torchs_world() -> None:
    elastic = LaunchSpec(**(LAUNCH | {"nnodes": "4:8"}))  # type: ignore[arg-type]
    env = render("torchrun", plan_mesh("fsdp2", P(tp_size=8), world_size=64), elastic).env
    assert "MESHCTX_DP_SIZE" not in env and "MESHCTX_FINGERPRINT" not in env
    launch = read_launch_env(env | {"WORLD_SIZE": "48"})
    assert launch.fingerprint is None and launch.plan().sizes.dp == 6
    launch.check_fingerprint("sha256:" + "0" * 64)  # nothing to compare with


def test_an_empty_environment_names_every_variable_once_with_a_fix() -> None:
    with pytest.raises(LaunchEnvError) as info:
        read_launch_env({})
    names = [name for name, _ in info.value.errors]
    assert names == [
        "MESHCTX_STRATEGY",
        "MESHCTX_TP_SIZE",
        "MESHCTX_PP_SIZE",
        "MESHCTX_CP_SIZE",
        "MESHCTX_EP_SIZE",
        "MESHCTX_DP_REPLICATE_SIZE",
        "WORLD_SIZE",
    ]
    assert all("not set;" in detail for _, detail in info.value.errors)
    assert "torchrun" in dict(info.value.errors)["WORLD_SIZE"]
    assert str(info.value).count("\n  ") == len(names)  # one line a variable


def test_malformed_values_are_named_together() -> None:
    env = render("torchrun", PLAN, LaunchSpec(**LAUNCH)).env  # type: ignore[arg-type]
    bad = env | {
        "MESHCTX_STRATEGY": "zero3",
        "MESHCTX_TP_SIZE": "eight",
        "MESHCTX_DP_SIZE": "0",
        "MESHCTX_FINGERPRINT": "abc",
        "WORLD_SIZE": "64",
    }
    with pytest.raises(LaunchEnvError) as info:
        read_launch_env(bad)
    errors = dict(info.value.errors)
    assert set(errors) == {"MESHCTX_STRATEGY", "MESHCTX_TP_SIZE", "MESHCTX_DP_SIZE", "MESHCTX_FINGERPRINT"}
    assert "fsdp2" in errors["MESHCTX_STRATEGY"] and "'eight'" in errors["MESHCTX_TP_SIZE"]
    assert "sha256:" in errors["MESHCTX_FINGERPRINT"]


def test_torch_starting_another_number_of_ranks_than_rendered_names_both() -> None:
    env = render("torchrun", PLAN, LaunchSpec(**LAUNCH)).env  # type: ignore[arg-type]
    with pytest.raises(LaunchEnvError) as info:
        read_launch_env(env | {"WORLD_SIZE": "32"})
    [(name, detail)] = info.value.errors
    assert name == "MESHCTX_WORLD_SIZE" and "rendered for 64 ranks but torch started 32" in detail


def test_a_plan_other_than_the_rendered_one_is_named_with_both_fingerprints() -> None:
    env = render("torchrun", PLAN, LaunchSpec(**LAUNCH)).env  # type: ignore[arg-type]
    launch = read_launch_env(env | {"WORLD_SIZE": "64", "MESHCTX_TP_SIZE": "4", "MESHCTX_DP_SIZE": "8"})
    built = launch.plan().fingerprint()
    with pytest.raises(LaunchEnvError) as info:
        launch.check_fingerprint(built)
    assert PLAN.fingerprint() in str(info.value) and built in str(info.value) and built != PLAN.fingerprint()


@pytest.mark.parametrize(("strategy", "replicas"), [("ddp", 4), ("megatron_fsdp", 1)])
def test_a_derived_replica_count_is_checked_not_requested(strategy: str, replicas: int) -> None:
    plan = plan_mesh(strategy, P(), world_size=4)
    env = render("torchrun", plan, LaunchSpec(nnodes=1, nproc_per_node=4)).env | {"WORLD_SIZE": "4"}
    assert env["MESHCTX_DP_REPLICATE_SIZE"] == str(replicas)
    launch = read_launch_env(env)
    assert launch.sizes.dp_replicate_size is None and launch.plan().fingerprint() == plan.fingerprint()
    with pytest.raises(
        LaunchEnvError, match=f"only fsdp2 takes a replica count: set MESHCTX_DP_REPLICATE_SIZE={replicas}"
    ):
        read_launch_env(env | {"MESHCTX_DP_REPLICATE_SIZE": "2"}).plan()
