"""``POST /v1/render/{target}`` against each target's documented field names, and ``meshctx render``
as a subprocess giving the very same body."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshctx.config import ParallelismSizes
from meshctx.plan import plan_mesh
from tests.integration.conftest import Post
from tests.support.servers import LiveServer

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {"strategy": "fsdp2", "nnodes": 4, "nproc_per_node": 8, "sizes": {"tp_size": 8, "pp_size": 2}}
PLAN = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, pp_size=2), world_size=32)


def rendered(post: Post, target: str, **launch: Any) -> dict[str, Any]:
    answer = post(f"/v1/render/{target}", json=BASE | launch)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True and body["plan"]["fingerprint"] == PLAN.fingerprint()
    rendering = body["rendering"]
    assert rendering["target"] == target and set(rendering) == {"target", "data", "text", "env", "notes"}
    if target != "kueue":  # Kueue annotations go on pods; the job's env comes from its own rendering
        assert rendering["env"]["MESHCTX_FINGERPRINT"] == PLAN.fingerprint()
    return dict(rendering)


def test_torchrun_flags_and_pet_env(post: Post) -> None:
    out = rendered(post, "torchrun", rdzv_endpoint="head:29500", command=["train.py", "--lr", "1"])
    argv = out["data"]["argv"]
    assert argv[0] == "torchrun" and argv[-3:] == ["train.py", "--lr", "1"]
    assert {"--nnodes=4", "--nproc-per-node=8", "--rdzv-backend=c10d", "--rdzv-endpoint=head:29500"} <= set(argv)
    pet = out["data"]["pet_env"]
    assert (pet["PET_NNODES"], pet["PET_NPROC_PER_NODE"], pet["PET_RDZV_ENDPOINT"]) == ("4", "8", "head:29500")


def test_slurm_sbatch_directives(post: Post) -> None:
    out = rendered(post, "slurm", accelerator="h100")
    directives = out["data"]["directives"]
    assert (directives["nodes"], directives["ntasks-per-node"], directives["gpus-per-node"]) == ("4", "1", "h100:8")
    assert "#SBATCH --nodes=4\n" in out["text"] and "#SBATCH --gpus-per-node=h100:8\n" in out["text"]
    assert directives["comment"].startswith("meshctx:strategy=fsdp2,tp=8,pp=2")
    subprocess.run(["bash", "-n"], input=out["text"], text=True, check=True, timeout=10)


def test_trainjob_num_nodes_and_num_proc_per_node(post: Post) -> None:
    out = rendered(post, "trainjob", image="repo/train:1", queue="team-a")
    doc = out["data"]
    assert (doc["apiVersion"], doc["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert (doc["spec"]["trainer"]["numNodes"], doc["spec"]["trainer"]["numProcPerNode"]) == (4, 8)
    assert doc["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": "team-a"}
    assert yaml.safe_load(out["text"]) == doc


def test_kueue_slice_annotations(post: Post) -> None:
    out = rendered(post, "kueue", slice_topology="cloud.provider.com/topology-rack", slice_group="stage")
    annotations = out["data"]["metadata"]["annotations"]
    assert annotations == {
        "kueue.x-k8s.io/podset-slice-required-topology": "cloud.provider.com/topology-rack",
        "kueue.x-k8s.io/podset-slice-size": "2",  # one pipeline stage = 16 ranks = 2 pods of 8
    }
    assert yaml.safe_load(out["text"]) == out["data"]


def test_skypilot_num_nodes_and_accelerators(post: Post) -> None:
    out = rendered(post, "skypilot", accelerator="H100", job_name="llm")
    doc = out["data"]
    assert (doc["name"], doc["num_nodes"], doc["resources"]) == ("llm", 4, {"accelerators": "H100:8"})
    assert doc["envs"]["MESHCTX_TP_SIZE"] == "8" and yaml.safe_load(out["text"]) == doc


def test_invalid_topology_is_a_200_report_without_rendering(post: Post) -> None:
    answer = post("/v1/render/torchrun", json=BASE | {"sizes": {"tp_size": 3}})
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False and body["rendering"] is None and body["plan"] is None
    assert body["problems"][0]["code"] == "world_size_not_divisible" and body["suggestions"]


def test_elastic_range_renders_without_fingerprint(post: Post) -> None:
    answer = post("/v1/render/slurm", json=BASE | {"nnodes": "2:4", "sizes": {"tp_size": 8}})
    body = answer.json()
    assert answer.status_code == 200 and body["valid"] is True
    assert body["rendering"]["data"]["directives"]["nodes"] == "2-4"
    assert "MESHCTX_FINGERPRINT" not in body["rendering"]["env"]


def fields(answer: Any) -> set[str]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return {e["field"] for e in answer.json()["errors"]}


def test_launch_settings_the_target_cannot_express_are_422_naming_each_field(post: Post) -> None:
    assert fields(post("/v1/render/torchrun", json=BASE)) == {"rdzv_endpoint"}
    assert fields(post("/v1/render/kueue", json=BASE)) == {"slice_topology"}
    elastic = BASE | {"nnodes": "2:4", "sizes": {"tp_size": 8}, "job_name": "Bad_Name"}
    assert fields(post("/v1/render/trainjob", json=elastic)) == {"nnodes", "job_name"}
    assert fields(post("/v1/render/skypilot", json=BASE)) == {"accelerator"}


def test_unknown_target_and_unknown_fields_are_422(post: Post) -> None:
    answer = post("/v1/render/mpirun", json=BASE)
    assert fields(answer) == {"target"} and "torchrun" in answer.json()["errors"][0]["detail"]
    assert fields(post("/v1/render/slurm", json=BASE | {"world_size": 32})) == {"world_size"}
    assert fields(post("/v1/render/slurm", json={"strategy": "fsdp2"})) == {"nnodes", "nproc_per_node"}
    too_big = BASE | {"nnodes": 1 << 22, "sizes": {}}
    assert fields(post("/v1/render/slurm", json=too_big)) == {"nnodes"}


def meshctx(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "service")])}
    return subprocess.run(
        [sys.executable, "-m", "meshctx.cli", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


CLI_BASE = ("--nnodes", "4", "--nproc-per-node", "8", "--tp", "8", "--pp", "2")


@pytest.mark.parametrize(
    ("target", "flags", "body"),
    [
        ("torchrun", ("--rdzv-endpoint", "head:29500"), {"rdzv_endpoint": "head:29500"}),
        ("slurm", ("--accelerator", "h100"), {"accelerator": "h100"}),
        ("trainjob", ("--image", "repo/train:1"), {"image": "repo/train:1"}),
        ("kueue", ("--slice-topology", "rack"), {"slice_topology": "rack"}),
        (
            "skypilot",
            ("--accelerator", "H100", "--command", "train.py", "--lr", "1"),
            {
                "accelerator": "H100",
                "command": ["train.py", "--lr", "1"],
            },
        ),
    ],
)
def test_cli_render_json_is_the_api_body(post: Post, target: str, flags: tuple[str, ...], body: dict) -> None:
    done = meshctx("render", target, *CLI_BASE, "--json", *flags)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == post(f"/v1/render/{target}", json=BASE | body).json()


def test_cli_render_text_and_exit_codes() -> None:
    done = meshctx("render", "trainjob", *CLI_BASE)
    assert done.returncode == 0 and yaml.safe_load(done.stdout)["spec"]["trainer"]["numNodes"] == 4
    invalid = meshctx("render", "slurm", "--nnodes", "2", "--nproc-per-node", "8", "--tp", "3")
    assert invalid.returncode == 1 and "world_size_not_divisible" in invalid.stderr and invalid.stdout == ""
    bad = meshctx("render", "torchrun", *CLI_BASE)
    assert bad.returncode == 2 and "--rdzv-endpoint" in bad.stderr and "Traceback" not in bad.stderr
    unknown = meshctx("render", "mpirun", *CLI_BASE)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    assert "render" in meshctx("--help").stdout


def test_cli_render_with_server_prints_what_it_prints_offline(integration_server: LiveServer) -> None:
    flags = (*CLI_BASE, "--accelerator", "H100", "--job-name", "llm", "--command", "train.py", "--lr", "1")
    for target in ("slurm", "skypilot"):
        offline = meshctx("render", target, *flags[:-4], "--json", *flags[-4:])
        online = meshctx("render", target, *flags[:-4], "--json", "--server", integration_server.url, *flags[-4:])
        assert online.returncode == offline.returncode == 0, online.stderr
        assert json.loads(online.stdout) == json.loads(offline.stdout)
    text = meshctx("render", "trainjob", *CLI_BASE, "--server", integration_server.url)
    assert text.returncode == 0 and text.stdout == meshctx("render", "trainjob", *CLI_BASE).stdout
    server = ("--server", integration_server.url)
    invalid = meshctx("render", "slurm", "--nnodes", "2", "--nproc-per-node", "8", "--tp", "3", *server)
    assert invalid.returncode == 1 and "world_size_not_divisible" in invalid.stderr
    refused = meshctx("render", "torchrun", *CLI_BASE, "--server", integration_server.url)
    assert refused.returncode == 2 and "rendezvous endpoint" in refused.stderr and "Traceback" not in refused.stderr
