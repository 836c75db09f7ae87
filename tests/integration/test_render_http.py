"""``POST /v1/render/{target}`` against each target's documented field names, and ``meshctx render``
as a subprocess giving the very same body."""

from __future__ import annotations

import argparse
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


def test_more_processes_than_gpus_per_node_is_refused_over_http_and_the_cli_sends_the_gpus(
    post: Post, integration_server: LiveServer
) -> None:
    answer = post("/v1/render/slurm", json=BASE | {"nproc_per_node": 8, "cluster": {"gpus_per_node": 4}})
    body = answer.json()
    assert answer.status_code == 200 and body["valid"] is False and body["rendering"] is None
    assert [p["code"] for p in body["problems"]] == ["nproc_exceeds_gpus_per_node"]
    flags = ("render", "slurm", "--nnodes", "2", "--nproc-per-node", "8", "--gpus-per-node", "4", "--tp", "8")
    offline, online = meshctx(*flags), meshctx(*flags, "--server", integration_server.url)
    assert offline.returncode == online.returncode == 1
    assert "nproc_exceeds_gpus_per_node" in online.stderr and online.stderr == offline.stderr


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


def test_indexed_job_runs_one_pod_per_node_with_static_node_ranks(post: Post) -> None:
    out = rendered(post, "job", image="repo/train:1", job_name="llm", queue="team-a")
    job = out["data"]
    assert (job["apiVersion"], job["kind"], job["metadata"]["labels"]) == (
        "batch/v1",
        "Job",
        {"kueue.x-k8s.io/queue-name": "team-a"},
    )
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    pod = spec["template"]["spec"]
    (trainer,) = pod["containers"]
    assert pod["subdomain"] == "llm" and trainer["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert trainer["command"][:6] == [
        "torchrun",
        "--nnodes=4",
        "--nproc-per-node=8",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        "--master-addr=llm-0.llm",
        "--master-port=29500",
    ]
    service, pasted = yaml.safe_load_all(out["text"])
    assert pasted == job and service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": "llm"}
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in (service, job):  # Kubernetes' own OpenAPI schema, unknown fields refused
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_jobset_runs_one_replicated_indexed_job(post: Post) -> None:
    out = rendered(post, "jobset", image="repo/train:1", job_name="llm")
    doc = out["data"]
    assert (doc["apiVersion"], doc["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    (workers,) = doc["spec"]["replicatedJobs"]
    assert (workers["name"], workers["replicas"], workers["template"]["spec"]["parallelism"]) == ("workers", 1, 4)
    command = workers["template"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--master-addr=llm-workers-0-0.llm" in command and yaml.safe_load(out["text"]) == doc


def test_rendered_job_and_jobset_are_admitted_and_a_resize_is_denied(post: Post) -> None:
    from tests.deploy.test_admission import admission_review

    for target in ("job", "jobset"):
        doc = rendered(post, target, image="repo/train:1", job_name="llm")["data"]
        answer = post("/v1/admission/kubernetes", json=admission_review(doc)).json()["response"]
        assert answer == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}, (target, answer)
        spec = doc["spec"] if target == "job" else doc["spec"]["replicatedJobs"][0]["template"]["spec"]
        spec["parallelism"] = spec["completions"] = 8
        answer = post("/v1/admission/kubernetes", json=admission_review(doc)).json()["response"]
        assert answer["allowed"] is False and answer["status"]["code"] in (403, 422), (target, answer)


def test_job_and_jobset_refuse_elastic_ranges_and_bad_names(post: Post) -> None:
    elastic = BASE | {"nnodes": "2:4", "sizes": {"tp_size": 8}, "job_name": "Bad_Name"}
    assert fields(post("/v1/render/job", json=elastic)) == {"nnodes", "job_name"}
    long_name = BASE | {"job_name": "a" * 52}  # the pod hostname adds -workers-0-0
    assert fields(post("/v1/render/jobset", json=long_name)) == {"job_name"}
    assert fields(post("/v1/render/job", json=BASE | {"rdzv_endpoint": "no-port"})) == {"rdzv_endpoint"}


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
        ("job", ("--image", "repo/train:1", "--job-name", "llm"), {"image": "repo/train:1", "job_name": "llm"}),
        ("jobset", ("--job-name", "llm"), {"job_name": "llm"}),
        (
            "skypilot",
            ("--accelerator", "H100", "--command", "train.py --lr 1"),
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
    flags = (*CLI_BASE, "--accelerator", "H100", "--job-name", "llm", "--master-port", "29700", "--rdzv-id", "r1")
    for target in ("slurm", "skypilot"):
        offline = meshctx("render", target, *flags, "--json", "--", "train.py", "--lr", "1")
        online = meshctx(
            "render", target, *flags, "--json", "--server", integration_server.url, "--", "train.py", "--lr", "1"
        )
        assert online.returncode == offline.returncode == 0, online.stderr
        assert "29700" in json.loads(offline.stdout)["rendering"]["text"]
        assert json.loads(online.stdout) == json.loads(offline.stdout)
    text = meshctx("render", "trainjob", *CLI_BASE, "--server", integration_server.url)
    assert text.returncode == 0 and text.stdout == meshctx("render", "trainjob", *CLI_BASE).stdout
    server = ("--server", integration_server.url)
    invalid = meshctx("render", "slurm", "--nnodes", "2", "--nproc-per-node", "8", "--tp", "3", *server)
    assert invalid.returncode == 1 and "world_size_not_divisible" in invalid.stderr
    refused = meshctx("render", "torchrun", *CLI_BASE, "--server", integration_server.url)
    assert refused.returncode == 2 and "rendezvous endpoint" in refused.stderr and "Traceback" not in refused.stderr


TOPOLOGY_FIELDS = {"strategy", "nnodes", "nproc_per_node", "sizes", "cluster", "model"}


def test_cli_flags_and_http_body_are_the_same_render_options(in_process: Any) -> None:
    from meshctx.cli import build_parser
    from meshctx.launch.spec import RENDER_OPTIONS, OptionKind

    schema = in_process.get("/openapi.json").json()["components"]["schemas"]["RenderBody"]
    http = set(schema["properties"]) - TOPOLOGY_FIELDS
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    launch = next(g for g in commands.choices["render"]._action_groups if g.title == "launch")
    flags = {flag for action in launch._group_actions for flag in action.option_strings}
    assert {"--rdzv-id", "--rdzv-backend", "--master-port", "--command"} <= flags
    assert {"--" + name.replace("_", "-") for name in http} == flags
    assert http == {o.name for o in RENDER_OPTIONS}
    for option in RENDER_OPTIONS:  # the same default and the same choices on both sides
        field = schema["properties"][option.name]
        default = list(option.default) if option.kind is OptionKind.ARGV else option.default  # type: ignore[call-overload]
        assert field.get("default") == default, option.name
        assert tuple(field.get("enum", ())) == option.choices, option.name


def test_rdzv_id_and_master_port_over_http_are_the_clis(post: Post) -> None:
    launch = {"rdzv_id": "run-7", "master_port": 29700, "job_name": "llm", "command": ["train.py", "--lr", "1"]}
    body = {"strategy": "fsdp2", "nnodes": 1, "nproc_per_node": 4, "sizes": {"tp_size": 2}}
    answer = post("/v1/render/torchrun", json=body | launch).json()
    argv = answer["rendering"]["data"]["argv"]
    assert "--rdzv-endpoint=127.0.0.1:29700" in argv and "--rdzv-id=run-7" in argv
    flags = ("--rdzv-id", "run-7", "--master-port", "29700", "--job-name", "llm", "--tp", "2")
    done = meshctx(
        "render", "torchrun", "--nnodes", "1", "--nproc-per-node", "4", *flags, "--json", "--", "train.py", "--lr", "1"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == answer
    bad = post("/v1/render/torchrun", json=body | {"master_port": 0, "slice_group": "rack", "command": []})
    assert fields(bad) == {"master_port", "slice_group", "command"}
