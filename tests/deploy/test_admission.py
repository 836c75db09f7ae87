"""The admission review functions fed real AdmissionReview documents of each workload kind."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from meshctx.config import ParallelismSizes as P
from meshctx.integrations.job_sizes import FieldProblem, bounded_int, parse_count
from meshctx.integrations.kubernetes_admission import (
    WARNING_LIMIT,
    AdmissionReviewError,
    Unchecked,
    decide,
    review,
    shorten,
)
from meshctx.launch import LaunchSpec, render
from meshctx.plan import plan_mesh


def admission_review(obj: dict[str, Any] | None, operation: str = "CREATE") -> dict[str, Any]:
    kind = obj["kind"] if obj else "TrainJob"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "trainer.kubeflow.org", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "trainer.kubeflow.org", "version": "v1alpha1", "resource": "trainjobs"},
            "name": "llm",
            "namespace": "team-a",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def trainjob(annotations: dict[str, str] | None, nodes: int = 4, nproc: int | str = 8) -> dict[str, Any]:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "llm", "namespace": "team-a", "annotations": annotations or {}},
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": nodes, "numProcPerNode": nproc}},
    }


def pytorchjob(annotations: dict[str, str], workers: int = 3, nproc: str = "8", elastic: Any = None) -> dict:
    pod = {"spec": {"containers": [{"name": "pytorch", "image": "train:1"}]}}
    spec: dict[str, Any] = {
        "nprocPerNode": nproc,
        "pytorchReplicaSpecs": {
            "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": pod},
            "Worker": {"replicas": workers, "restartPolicy": "OnFailure", "template": pod},
        },
    }
    if elastic:
        spec["elasticPolicy"] = elastic
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "pt", "annotations": annotations},
        "spec": spec,
    }


def jobset(annotations: dict[str, str], replicas: int = 2, parallelism: int = 2, gpus: int = 8) -> dict:
    def job(name: str, count: int, gpu: int) -> dict:
        limits = {"nvidia.com/gpu": str(gpu)} if gpu else {}
        container = {"name": name, "image": "train:1", "resources": {"limits": limits}}
        return {
            "name": name,
            "replicas": count,
            "template": {
                "spec": {
                    "parallelism": parallelism,
                    "completions": parallelism,
                    "template": {"spec": {"containers": [container]}},
                }
            },
        }

    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "js", "annotations": annotations},
        "spec": {"replicatedJobs": [job("initializer", 1, 0), job("workers", replicas, gpus)]},
    }


def response(obj: dict | None, operation: str = "CREATE", unchecked: Unchecked = "deny") -> dict[str, Any]:
    body = admission_review(obj, operation)
    out = review(body, unchecked=unchecked)
    assert out["apiVersion"] == body["apiVersion"] and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == body["request"]["uid"]
    for warning in out["response"].get("warnings", []):
        assert len(warning) <= WARNING_LIMIT
    return out["response"]


def test_workloads_without_meshctx_annotations_are_allowed_untouched() -> None:
    assert response(trainjob(None, nodes=3)) == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}
    assert response(trainjob({"team": "x"}, nodes=3))["allowed"] is True
    assert response(None, "DELETE")["allowed"] is True


def test_valid_trainjob_is_allowed_with_node_warnings_shortened() -> None:
    assert response(trainjob({"meshctx.io/tp-size": "8", "meshctx.io/pp-size": "2"}))["allowed"] is True
    out = response(trainjob({"meshctx.io/tp-size": "16"}))  # tp 16 spans 2 nodes of 8
    assert out["allowed"] is True and out["warnings"][0].startswith("meshctx axis_spans_nodes")


def test_invalid_trainjob_is_denied_with_the_numbers_and_a_fix() -> None:
    out = response(trainjob({"meshctx.io/tp-size": "3", "meshctx.io/strategy": "fsdp2"}))
    assert out["allowed"] is False and out["status"]["code"] == 403
    message = out["status"]["message"]
    assert "TrainJob team-a/llm on 4 nodes × 8 processes" in message
    assert "world_size_not_divisible" in message and "Fix:" in message


def test_unreadable_annotations_are_denied_with_422() -> None:
    out = response(trainjob({"meshctx.io/tp-size": "eight", "meshctx.io/pp-size": "0"}))
    assert out["allowed"] is False and out["status"]["code"] == 422
    assert "meshctx.io/tp-size" in out["status"]["message"] and "meshctx.io/pp-size" in out["status"]["message"]


def test_trainjob_without_num_nodes_is_denied_as_unchecked_unless_allowed() -> None:
    obj = trainjob({"meshctx.io/tp-size": "8"})
    del obj["spec"]["trainer"]["numNodes"]
    out = response(obj)
    assert out["allowed"] is False and out["status"]["code"] == 422
    assert "could not be checked" in out["status"]["message"] and "numNodes" in out["status"]["message"]
    assert "MESHCTX_ADMISSION_UNCHECKED=deny" in out["status"]["message"]
    out = response(obj, unchecked="allow")
    assert out["allowed"] is True and "numNodes" in out["warnings"][0]


def test_trainjob_auto_nproc_falls_back_to_gpu_limits() -> None:
    obj = trainjob({"meshctx.io/tp-size": "3"}, nproc="auto")
    obj["spec"]["trainer"]["resourcesPerNode"] = {"limits": {"nvidia.com/gpu": "6"}}
    assert response(obj)["allowed"] is True  # 4 × 6 = 24 ranks, divisible by tp 3


def test_rendered_trainjob_is_admitted_and_a_stale_fingerprint_is_denied() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8, pp_size=2), world_size=32)
    doc = render("trainjob", plan, LaunchSpec(nnodes=4, nproc_per_node=8)).data
    assert response(copy.deepcopy(doc))["allowed"] is True
    doc["spec"]["trainer"]["numNodes"] = 8  # scaled without re-rendering: the rendered dp no longer fits
    assert "world_size_mismatch" in response(copy.deepcopy(doc))["status"]["message"]
    del doc["metadata"]["annotations"]["meshctx.io/dp-size"]  # dp inferred: valid, but not the rendered plan
    out = response(doc)
    assert out["allowed"] is False and "meshctx.io/fingerprint" in out["status"]["message"]


def test_pytorchjob_counts_master_and_workers() -> None:
    assert response(pytorchjob({"meshctx.io/tp-size": "8"}, workers=3))["allowed"] is True  # 4 × 8
    out = response(pytorchjob({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "2"}, workers=3))
    assert out["allowed"] is False and "world_size_mismatch" in out["status"]["message"]


def test_pytorchjob_elastic_policy_checks_every_node_count() -> None:
    elastic = {"minReplicas": 2, "maxReplicas": 4, "nProcPerNode": 8}
    assert response(pytorchjob({"meshctx.io/tp-size": "8"}, nproc="auto", elastic=elastic))["allowed"] is True
    out = response(pytorchjob({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "2"}, elastic=elastic))
    assert out["allowed"] is False and "elastic_range_invalid" in out["status"]["message"]


def test_jobset_world_is_pods_with_gpus_times_their_gpus() -> None:
    assert response(jobset({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "4"}))["allowed"] is True  # 2·2 pods × 8
    out = response(jobset({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "8"}))
    assert out["allowed"] is False and "32" in out["status"]["message"]
    annotated = jobset({"meshctx.io/tp-size": "4", "meshctx.io/nproc-per-node": "4", "meshctx.io/dp-size": "4"})
    assert response(annotated)["allowed"] is True  # 4 pods × 4 processes


def test_unsupported_kind_with_annotations_is_unchecked_denied_or_allowed_with_a_warning() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "j", "annotations": {"meshctx.io/tp-size": "8"}},
    }
    out = response(obj)
    assert out["allowed"] is False and "cannot read the world size of 'Deployment'" in out["status"]["message"]
    out = response(obj, unchecked="allow")
    assert out["allowed"] is True and "cannot read the world size of 'Deployment'" in out["warnings"][0]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ([], {"body"}),
        ({"apiVersion": "v1", "kind": "Pod", "request": {"uid": "u"}}, {"apiVersion", "kind"}),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, {"request"}),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}, {"request.uid"}),
    ],
)
def test_malformed_reviews_raise_with_every_field(body: object, fields: set[str]) -> None:
    with pytest.raises(AdmissionReviewError) as info:
        review(body)
    assert {f for f, _ in info.value.errors} == fields


def test_v1beta1_reviews_get_v1beta1_back() -> None:
    body = admission_review(trainjob({"meshctx.io/tp-size": "8"}))
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    assert review(body)["apiVersion"] == "admission.k8s.io/v1beta1"


def test_an_admitted_workload_s_decision_carries_what_registering_it_needs() -> None:
    job = trainjob({"meshctx.io/tp-size": "8", "meshctx.io/pp-size": "2"})
    job["metadata"]["uid"] = "9d1c0d2e-0000-4000-8000-000000000001"
    decision = decide(admission_review(job)["request"])
    assert decision.verdict == "allowed" and decision.workload is not None
    workload = decision.workload
    assert (workload.kind, workload.namespace, workload.name, workload.uid) == (
        "TrainJob",
        "team-a",
        "llm",
        job["metadata"]["uid"],
    )
    assert workload.created and workload.request.nnodes == 4 and workload.request.nproc_per_node == 8
    assert (workload.request.sizes.tp_size, workload.request.sizes.pp_size) == (8, 2)
    dry = admission_review(job)
    dry["request"]["dryRun"] = True
    assert decide(dry["request"]).workload == replace(workload, created=False)
    # Only a checked, admitted workload carries one: not a denial, nor one admitted unchecked, nor an untouched one.
    assert decide(admission_review(trainjob({"meshctx.io/tp-size": "3"}))["request"]).workload is None
    unknown = decide(
        admission_review(trainjob({"meshctx.io/tp-size": "8"}, nproc="auto"))["request"], unchecked="allow"
    )
    assert unknown.verdict == "unchecked" and unknown.allowed and unknown.workload is None
    assert decide(admission_review(trainjob(None))["request"]).workload is None


def test_shorten_cuts_at_a_word_with_an_ellipsis() -> None:
    text = "word " * 40
    short = shorten(text)
    assert len(short) <= WARNING_LIMIT and short.endswith("…") and not short.endswith(" …")


# ------------------------------------------------------------------------- updates: only topology changes
def update(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    body = admission_review(new, "UPDATE")
    body["request"]["oldObject"] = old
    out = review(body)
    assert out["response"]["uid"] == body["request"]["uid"]
    return out["response"]


def test_kueue_unsuspend_of_an_admitted_job_is_allowed() -> None:
    """Kueue admits a suspended job by flipping spec.suspend; the topology is untouched, so no re-check — even
    for a job the webhook would deny today (created before meshctx was installed, or under older rules)."""
    old = trainjob({"meshctx.io/tp-size": "3"})
    old["spec"]["suspend"] = True
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = False
    new["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a"}
    assert update(old, new) == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}
    assert response(new)["allowed"] is False  # the same object as a CREATE is checked, and invalid


def test_deletion_time_updates_are_allowed() -> None:
    """Removing finalizers of an object being deleted must never be refused, whatever it holds."""
    old = trainjob({"meshctx.io/tp-size": "3"}, nodes=10**30)
    old["metadata"] |= {"finalizers": ["trainer.kubeflow.org/resources"], "deletionTimestamp": "2026-12-02T10:00:00Z"}
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    new["spec"]["trainer"]["numNodes"] = 7  # even a changed topology: the object is going away
    assert update(old, new)["allowed"] is True
    new["metadata"]["annotations"] = ["unreadable"]  # even what would be a 422 on CREATE
    assert update(None, new)["allowed"] is True


def test_an_update_that_changes_the_topology_is_checked() -> None:
    old = trainjob({"meshctx.io/tp-size": "8"})
    scaled = copy.deepcopy(old)
    scaled["spec"]["trainer"]["numNodes"] = 3
    scaled["metadata"]["annotations"]["meshctx.io/dp-size"] = "4"
    out = update(old, scaled)
    assert out["allowed"] is False and "world_size_mismatch" in out["status"]["message"]
    resized = copy.deepcopy(old)
    resized["metadata"]["annotations"]["meshctx.io/tp-size"] = "3"
    assert update(old, resized)["status"]["code"] == 403
    fine = copy.deepcopy(old)
    fine["spec"]["trainer"]["numNodes"] = 2
    assert update(old, fine)["allowed"] is True


def test_an_update_without_old_object_or_newly_opting_in_is_checked() -> None:
    bad = trainjob({"meshctx.io/tp-size": "3"})
    assert update(None, bad)["allowed"] is False
    assert update(trainjob(None), bad)["allowed"] is False


# ------------------------------------------------------------------------------- batch/v1 Job and Pod
def container(command: Sequence[str], gpus: int | None = 8, env: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": "trainer", "image": "train:1", "command": list(command)}
    if gpus is not None:
        out["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if env:
        out["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return out


TORCHRUN = ("torchrun", "--nnodes=4", "--nproc-per-node=8", "--node-rank=$(JOB_COMPLETION_INDEX)", "train.py")


def indexed_job(annotations: dict[str, str] | None, pods: int = 4, *containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "llm", "namespace": "team-a", "annotations": annotations or {}},
        "spec": {
            "completionMode": "Indexed",
            "completions": pods,
            "parallelism": pods,
            "template": {"spec": {"restartPolicy": "Never", "containers": list(containers or [container(TORCHRUN)])}},
        },
    }


def pod(annotations: dict[str, str] | None, *containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "llm-0", "namespace": "team-a", "annotations": annotations or {}},
        "spec": {"containers": list(containers)},
    }


def test_indexed_job_world_is_pods_times_torchrun_processes() -> None:
    assert response(indexed_job({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "4"}))["allowed"] is True
    out = response(indexed_job({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "8"}))
    assert out["status"]["code"] == 403 and "Job team-a/llm on 4 nodes × 8 processes" in out["status"]["message"]


@pytest.mark.parametrize(
    ("command", "env", "gpus"),
    [
        (["python", "-m", "torch.distributed.run", "--nnodes", "4", "--nproc_per_node", "8", "train.py"], None, 8),
        (["bash", "-c", "pip install -e . && torchrun --nnodes=4 --nproc-per-node=8 train.py"], None, 8),
        (["torchrun", "--nnodes=$(NODES)", "--nproc-per-node=$(PROCS)", "train.py"], {"NODES": "4", "PROCS": "8"}, 8),
        (["torchrun", "train.py"], {"PET_NNODES": "4", "PET_NPROC_PER_NODE": "8"}, 8),
        (["torchrun", "--nnodes=4", "--nproc-per-node=gpu", "train.py"], None, 8),
        (["/opt/venv/bin/torchrun", "--nnodes=2:4", "--nproc-per-node=8", "train.py", "--nnodes", "1"], None, None),
    ],
)
def test_indexed_job_reads_torchrun_however_it_is_written(
    command: list[str], env: dict[str, str] | None, gpus: int | None
) -> None:
    """tp 8 × dp 2 needs 16 ranks: denied on the 4 × 8 = 32 each of these commands starts."""
    job = indexed_job({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "2"}, 4, container(command, gpus, env))
    out = response(job)
    assert out["allowed"] is False and out["status"]["code"] == 403, out
    assert "on 4 nodes × 8 processes" in out["status"]["message"]


def test_indexed_job_whose_torchrun_cannot_meet_is_denied_with_the_fix() -> None:
    default_nnodes = indexed_job({"meshctx.io/tp-size": "8"}, 4, container(["torchrun", "--nproc-per-node=8", "t.py"]))
    message = response(default_nnodes)["status"]["message"]
    assert "torchrun --nnodes (unset: 1) is 1 but the Job runs 4 pods" in message and "--nnodes=4" in message
    other = indexed_job({"meshctx.io/tp-size": "8"}, 2)  # TORCHRUN says --nnodes=4
    assert "is 4 but the Job runs 2 pods" in response(other)["status"]["message"]
    staggered = indexed_job({"meshctx.io/tp-size": "8"})
    staggered["spec"]["parallelism"] = 2
    out = response(staggered)
    assert (
        out["status"]["code"] == 422 and "spec.parallelism 2 must equal spec.completions 4" in out["status"]["message"]
    )


def test_job_without_torchrun_uses_the_annotation_then_the_gpus() -> None:
    wrapper = container(["bash", "run.sh"], gpus=4)
    assert response(indexed_job({"meshctx.io/tp-size": "4"}, 2, wrapper))["allowed"] is True  # 2 × 4 GPUs
    annotated = {"meshctx.io/tp-size": "4", "meshctx.io/nproc-per-node": "2", "meshctx.io/dp-size": "1"}
    assert response(indexed_job(annotated, 2, wrapper))["allowed"] is True  # 2 × 2 processes, not the 8 GPUs
    unknown_job = indexed_job({"meshctx.io/tp-size": "4"}, 2, container(["bash", "run.sh"], gpus=None))
    assert "could not be checked" in response(unknown_job)["status"]["message"]
    unknown = response(unknown_job, unchecked="allow")
    assert unknown["allowed"] is True and unknown["warnings"][0].startswith("meshctx: not checked")


def test_pod_running_torchrun() -> None:
    two_nodes = container(["torchrun", "--nnodes=2", "--nproc-per-node=4", "--rdzv-endpoint=head:29500", "t.py"])
    assert response(pod({"meshctx.io/tp-size": "8"}, two_nodes))["allowed"] is True  # 2 × 4
    out = response(pod({"meshctx.io/tp-size": "3"}, two_nodes))
    assert out["status"]["code"] == 403 and "Pod team-a/llm-0 on 2 nodes × 4 processes" in out["status"]["message"]
    standalone = container(["torchrun", "--standalone", "--nproc-per-node=8", "t.py"])
    assert response(pod({"meshctx.io/tp-size": "8"}, standalone))["allowed"] is True
    assert response(pod({"meshctx.io/tp-size": "16"}, standalone))["status"]["code"] == 403


def test_pod_whose_world_is_only_known_at_run_time_is_unchecked() -> None:
    from_downward_api = container(["torchrun", "--nnodes=$(NNODES)", "--nproc-per-node=8", "t.py"])
    denied = response(pod({"meshctx.io/tp-size": "8"}, from_downward_api))
    assert denied["allowed"] is False and "only known when the pod runs" in denied["status"]["message"]
    out = response(pod({"meshctx.io/tp-size": "8"}, from_downward_api), unchecked="allow")
    assert out["allowed"] is True and "only known when the pod runs" in out["warnings"][0]
    no_torchrun = response(pod({"meshctx.io/tp-size": "8"}, container(["python", "serve.py"])), unchecked="allow")
    assert no_torchrun["allowed"] is True and "does not run torchrun" in no_torchrun["warnings"][0]
    two = pod({"meshctx.io/tp-size": "8"}, container(TORCHRUN), container(TORCHRUN))
    assert response(two)["status"]["code"] == 422


# --------------------------------------------------------------------------------------- strict counts
@pytest.mark.parametrize("value", [8, "8", " 8 ", "0008"])
def test_counts_are_plain_decimal_integers(value: object) -> None:
    assert parse_count(value, "f") == 8


@pytest.mark.parametrize(
    ("value", "shown_as"),
    [
        ("²", "'²'"),  # str.isdigit() says yes; int() says no
        ("٨", "'٨'"),  # an Arabic-Indic eight
        (True, "True"),
        (8.0, "8.0"),
        (0, "0"),
        (-8, "-8"),
        (2**31, "2147483648"),
        (10**5000, "an integer of about 5001 digits"),  # repr() itself would raise here
        ("9" * 5000, "'99999999999999999999999999999999999999… (5002 characters)"),
        (["8"], "list"),
    ],
    ids=["superscript", "arabic-indic", "bool", "float", "zero", "negative", "2^31", "10^5000", "5000-digits", "list"],
)
def test_anything_else_is_refused_by_name_with_a_short_rendering(value: object, shown_as: str) -> None:
    with pytest.raises(FieldProblem) as info:
        parse_count(value, "meshctx.io/tp-size")
    assert info.value.name == "meshctx.io/tp-size"
    assert str(info.value) == f"meshctx.io/tp-size must be an integer from 1 to 2147483647, got {shown_as}"


def test_long_integer_literals_are_never_converted() -> None:
    assert bounded_int("12") == 12 and bounded_int("-3") == -3
    assert bounded_int("9" * 31) == "<an integer of 31 digits>"
