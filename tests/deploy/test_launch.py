"""Launcher renderings checked against each target's own field names (torchrun's real parser)."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess

import pytest

from meshctx import cli
from meshctx.cli.render import launch_from_args
from meshctx.config import ParallelismSizes as P
from meshctx.launch import TARGETS, LaunchError, LaunchSpec, render, validate_and_render
from meshctx.launch.kueue import SLICE_REQUIRED, SLICE_SIZE, slice_pods
from meshctx.launch.spec import RENDER_OPTIONS
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


def render_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["render", "torchrun", "--nnodes", "1", "--nproc-per-node", "4", *argv])


def test_launch_spec_fields_are_the_render_option_table() -> None:
    spec_fields = {f.name: f.default for f in dataclasses.fields(LaunchSpec)}
    assert spec_fields.pop("nnodes") is spec_fields.pop("nproc_per_node") is dataclasses.MISSING
    assert spec_fields == {o.name: o.default for o in RENDER_OPTIONS}


def test_the_training_command_is_one_shell_string_or_everything_after_dashes() -> None:
    quoted = launch_from_args(render_args("--command", "python train.py --cfg 'a b.yaml'", "--tp", "2"))
    assert quoted.command == ("python", "train.py", "--cfg", "a b.yaml")
    args = render_args("--tp", "2", "--", "python", "train.py", "--lr", "3e-4", "--tp", "9", "--", "x")
    assert args.tp_size == 2  # meshctx's --tp; the one after -- is the script's
    assert launch_from_args(args).command == ("python", "train.py", "--lr", "3e-4", "--tp", "9", "--", "x")
    assert launch_from_args(render_args()).command == ("train.py",)


def test_the_training_command_never_swallows_meshctx_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        render_args("--command", "train.py", "--lr", "1")  # unquoted: --lr is not meshctx's
    assert info.value.code == cli.EXIT_USAGE and "unrecognized arguments: --lr 1" in capsys.readouterr().err
    assert render_args("--command", "train.py", "--tp", "2").tp_size == 2
    for argv, message in [
        (("--command", "train.py", "--", "x"), "once"),
        (("--",), "nothing after --"),
        (("--command", "train.py 'unclosed"), "quotes"),
        (("--command", ""), "empty"),
    ]:
        with pytest.raises(cli.UsageError, match=message):
            launch_from_args(render_args(*argv))


def test_rdzv_id_backend_and_master_port_reach_torchruns_parser() -> None:
    torch_run = pytest.importorskip("torch.distributed.run")
    plan = plan_mesh("fsdp2", P(tp_size=2), world_size=4)
    single = launch_from_args(render_args("--master-port", "29611", "--rdzv-id", "abc", "--rdzv-backend", "c10d"))
    args = torch_run.get_args_parser().parse_args(render("torchrun", plan, single).data["argv"][1:])
    assert (args.rdzv_endpoint, args.rdzv_id, args.rdzv_backend, args.standalone) == (
        "127.0.0.1:29611",
        "abc",
        "c10d",
        False,
    )
    multi = spec(rdzv_id="run-7", master_port=29700)
    script = render("slurm", plan_mesh("fsdp2", P(tp_size=8), world_size=32), multi).text
    assert '--rdzv-endpoint="$head_node:29700"' in script and "--rdzv-id=run-7" in script
    assert (
        "--master-port=29700"
        in render(
            "skypilot", plan_mesh("fsdp2", P(tp_size=8), world_size=32), spec(accelerator="H100", master_port=29700)
        ).text
    )
    with pytest.raises(LaunchError) as info:
        render("torchrun", plan, spec(nnodes=1, nproc_per_node=4, master_port=70000, command=()))
    assert {f for f, _ in info.value.errors} == {"master_port", "command"}
