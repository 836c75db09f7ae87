"""Launcher renderings checked against each target's own field names (torchrun's real parser)."""

from __future__ import annotations

import subprocess

import pytest

from meshctx import cli
from meshctx.config import ParallelismSizes as P
from meshctx.launch import TARGETS, LaunchError, LaunchSpec, render, validate_and_render
from meshctx.launch.kueue import SLICE_REQUIRED, SLICE_SIZE, slice_pods
from meshctx.plan import plan_mesh


def spec(**kw: object) -> LaunchSpec:
    base: dict[str, object] = {"nnodes": 4, "nproc_per_node": 8, "rdzv_endpoint": "head:29500"}
    return LaunchSpec(**(base | kw))  # type: ignore[arg-type]


def test_torchrun_flags_and_pet_env_parse_identically_in_torchrun() -> None:
    torch_run = pytest.importorskip("torch.distributed.run")
    plan = plan_mesh("fsdp2", P(tp_size=8, pp_size=2), world_size=32)
    out = render("torchrun", plan, spec(command=("train.py", "--lr", "1")))
    args = torch_run.get_args_parser().parse_args(out.data["argv"][1:])
    assert (args.nnodes, args.nproc_per_node) == ("4", "8")
    assert (args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id) == ("c10d", "head:29500", "meshctx-job")
    assert args.training_script == "train.py" and args.training_script_args == ["--lr", "1"]
    # The same settings through PET_* only (torchrun reads PET_<DEST> for each absent flag).
    with pytest.MonkeyPatch.context() as mp:
        for key, value in out.data["pet_env"].items():
            mp.setenv(key, value)
        env_args = torch_run.get_args_parser().parse_args(["train.py"])
    assert (env_args.nnodes, env_args.nproc_per_node, env_args.rdzv_endpoint) == ("4", "8", "head:29500")
    assert out.env["MESHCTX_FINGERPRINT"] == plan.fingerprint()
    assert out.env["MESHCTX_DP_SIZE"] == "2" and out.env["MESHCTX_WORLD_SIZE"] == "32"


def test_single_node_torchrun_is_standalone_and_multi_node_needs_an_endpoint() -> None:
    torch_run = pytest.importorskip("torch.distributed.run")
    plan = plan_mesh("fsdp2", P(tp_size=4), world_size=8)
    out = render("torchrun", plan, spec(nnodes=1, rdzv_endpoint=None))
    assert torch_run.get_args_parser().parse_args(out.data["argv"][1:]).standalone is True
    assert out.data["pet_env"]["PET_STANDALONE"] == "1"
    with pytest.raises(LaunchError) as info:
        render("torchrun", plan_mesh("fsdp2", P(tp_size=8), world_size=32), spec(rdzv_endpoint=None))
    assert info.value.errors[0][0] == "rdzv_endpoint"


def test_elastic_range_is_validated_per_node_count_and_leaves_out_the_fingerprint() -> None:
    report, out = validate_and_render("torchrun", "fsdp2", P(tp_size=8), spec(nnodes="2:4"))
    assert report.valid and out is not None
    assert "--nnodes=2:4" in out.data["argv"]
    assert "MESHCTX_FINGERPRINT" not in out.env and "MESHCTX_DP_SIZE" not in out.env
    report, out = validate_and_render("torchrun", "fsdp2", P(tp_size=8, dp_size=2), spec(nnodes="2:4"))
    assert not report.valid and out is None
    assert "elastic_range_invalid" in [p.code.value for p in report.problems]


def test_slurm_script_uses_sbatch_options_and_is_valid_bash() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8, pp_size=2), world_size=32)
    out = render("slurm", plan, spec(accelerator="h100"))
    directives = out.data["directives"]
    assert set(directives) == {"job-name", "nodes", "ntasks-per-node", "gpus-per-node", "comment"}
    assert directives["nodes"] == "4" and directives["gpus-per-node"] == "h100:8"
    assert directives["comment"] == "meshctx:strategy=fsdp2,tp=8,pp=2,cp=1,ep=1,dp_replicate=1,dp=2,nproc=8"
    assert "#SBATCH --nodes=4" in out.text and out.text.startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n"], input=out.text, text=True, check=True, timeout=10)
    ranged = render("slurm", plan_mesh("fsdp2", P(tp_size=8), world_size=32), spec(nnodes="2:4"))
    assert ranged.data["directives"]["nodes"] == "2-4"


def test_trainjob_fields_follow_the_v1alpha1_api() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8), world_size=32)
    doc = render("trainjob", plan, spec(image="repo/train:1", queue="team-a")).data
    assert doc["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and doc["kind"] == "TrainJob"
    trainer = doc["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (4, 8)
    assert trainer["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": 8}}
    assert doc["spec"]["runtimeRef"] == {"name": "torch-distributed"}
    assert doc["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "team-a"}
    assert doc["metadata"]["annotations"]["meshctx.io/tp-size"] == "8"
    assert {"name": "MESHCTX_FINGERPRINT", "value": plan.fingerprint()} in trainer["env"]
    with pytest.raises(LaunchError) as info:
        render("trainjob", plan, spec(nnodes="2:4", job_name="Bad_Name"))
    assert {f for f, _ in info.value.errors} == {"nnodes", "job_name"}


@pytest.mark.parametrize(
    ("sizes", "world", "nproc", "group", "expected"),
    [
        (P(tp_size=4), 32, 8, "model", 1),
        (P(tp_size=8, cp_size=2), 64, 8, "model", 2),
        (P(tp_size=4, ep_size=16), 64, 8, "model", 2),
        (P(tp_size=8, pp_size=4), 64, 8, "stage", 2),
        (P(tp_size=3), 24, 8, "model", 3),
    ],
)
def test_kueue_slices_hold_whole_groups(sizes: P, world: int, nproc: int, group: str, expected: int) -> None:
    plan = plan_mesh("fsdp2", sizes, world_size=world)
    launch = spec(nnodes=world // nproc, nproc_per_node=nproc, slice_topology="rack", slice_group=group)
    size = slice_pods(plan, launch)
    assert size == expected
    axes = ["tp", "cp", "ep"] if group == "model" else ["dp_cp"]
    for axis in axes:
        if axis in plan.layouts and (axis != "dp_cp" or plan.sizes.pp > 1):
            for ranks in plan.groups(axis):
                assert len({(r // nproc) // size for r in ranks}) == 1, (axis, ranks)
    doc = render("kueue", plan, launch).data["metadata"]["annotations"]
    assert doc == {SLICE_REQUIRED: "rack", SLICE_SIZE: str(expected)}


def test_kueue_needs_a_topology_level_and_can_pin_the_podset() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8), world_size=32)
    with pytest.raises(LaunchError):
        render("kueue", plan, spec())
    out = render("kueue", plan, spec(slice_topology="rack", podset_topology="block", podset_topology_mode="preferred"))
    assert out.data["metadata"]["annotations"]["kueue.x-k8s.io/podset-preferred-topology"] == "block"


def test_skypilot_task_fields() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8), world_size=16)
    doc = render("skypilot", plan, spec(nnodes=2, accelerator="H100")).data
    assert doc["num_nodes"] == 2 and doc["resources"] == {"accelerators": "H100:8"}
    assert doc["envs"]["MESHCTX_TP_SIZE"] == "8" and "$SKYPILOT_NODE_RANK" in str(doc["run"])
    with pytest.raises(LaunchError) as info:
        render("skypilot", plan, spec(nnodes=2))
    assert info.value.errors[0][0] == "accelerator"


def test_launch_must_match_the_plan_and_unknown_targets_are_named() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8), world_size=32)
    with pytest.raises(LaunchError, match="use nnodes 4"):
        render("torchrun", plan, spec(nnodes=3))
    with pytest.raises(LaunchError, match="unknown target"):
        render("mpirun", plan, spec())
    assert set(TARGETS) == {"torchrun", "slurm", "trainjob", "kueue", "skypilot", "job", "jobset"}


def test_cli_render_prints_the_text_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()  # meshctx render is one of its commands
    args = parser.parse_args(["render", "trainjob", "--nnodes", "4", "--nproc-per-node", "8", "--tp", "8"])
    assert args.handler(args) == cli.EXIT_VALID
    assert "numProcPerNode: 8" in capsys.readouterr().out
    args = parser.parse_args(["render", "slurm", "--nnodes", "2", "--nproc-per-node", "8", "--tp", "3", "--json"])
    assert args.handler(args) == cli.EXIT_INVALID
    assert '"rendering": null' in capsys.readouterr().out
    args = parser.parse_args(["render", "skypilot", "--nnodes", "2", "--nproc-per-node", "8"])
    with pytest.raises(cli.UsageError, match="--accelerator"):
        args.handler(args)
