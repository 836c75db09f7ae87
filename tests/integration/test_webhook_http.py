"""The Kubernetes admission webhook over HTTP: real AdmissionReview documents (TrainJob, PyTorchJob,
JobSet) posted to ``meshctx serve`` on loopback and to the app in process."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx

from tests.deploy.test_admission import (
    TORCHRUN,
    admission_review,
    container,
    indexed_job,
    jobset,
    pod,
    pytorchjob,
    trainjob,
)
from tests.integration.conftest import Post

PATH = "/v1/admission/kubernetes"
UID = "705ab4f5-6393-11e8-b7cc-42010a800002"


def verdict(post: Post, review: dict[str, Any]) -> dict[str, Any]:
    """POST a review; check the envelope the API server requires and return ``response``."""
    answer = post(PATH, json=review)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["apiVersion"] == review["apiVersion"] and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    assert all(len(w) <= 120 for w in body["response"].get("warnings", []))
    return dict(body["response"])


def test_workload_without_meshctx_annotations_is_allowed_untouched(post: Post) -> None:
    assert verdict(post, admission_review(trainjob(None, nodes=3))) == {"uid": UID, "allowed": True}
    assert verdict(post, admission_review(pytorchjob({"team": "a"}, workers=2))) == {"uid": UID, "allowed": True}
    assert verdict(post, admission_review(None, "DELETE")) == {"uid": UID, "allowed": True}


def test_valid_trainjob_is_allowed_and_a_node_spanning_tp_group_warns(post: Post) -> None:
    assert verdict(post, admission_review(trainjob({"meshctx.io/tp-size": "8", "meshctx.io/pp-size": "2"}))) == {
        "uid": UID,
        "allowed": True,
    }
    out = verdict(post, admission_review(trainjob({"meshctx.io/tp-size": "16"})))
    assert out["allowed"] is True and out["warnings"][0].startswith("meshctx axis_spans_nodes")


def test_invalid_trainjob_is_denied_with_403_numbers_and_fix(post: Post) -> None:
    out = verdict(post, admission_review(trainjob({"meshctx.io/tp-size": "3"})))
    assert out["allowed"] is False and out["status"]["code"] == 403
    message = out["status"]["message"]
    assert "TrainJob team-a/llm on 4 nodes × 8 processes" in message
    assert "world_size_not_divisible" in message and "Fix:" in message


def test_unreadable_annotations_are_denied_with_422_in_the_review(post: Post) -> None:
    out = verdict(post, admission_review(trainjob({"meshctx.io/tp-size": "eight", "meshctx.io/pp-size": "0"})))
    assert out["allowed"] is False and out["status"]["code"] == 422
    assert "meshctx.io/tp-size" in out["status"]["message"] and "meshctx.io/pp-size" in out["status"]["message"]


def test_pytorchjob_master_plus_workers(post: Post) -> None:
    assert verdict(post, admission_review(pytorchjob({"meshctx.io/tp-size": "8"}, workers=3)))["allowed"] is True
    denied = verdict(post, admission_review(pytorchjob({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "2"})))
    assert denied["allowed"] is False and "world_size_mismatch" in denied["status"]["message"]
    elastic = {"minReplicas": 2, "maxReplicas": 4, "nProcPerNode": 8}
    ranged = pytorchjob({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "2"}, elastic=elastic)
    assert "elastic_range_invalid" in verdict(post, admission_review(ranged))["status"]["message"]


def test_jobset_counts_gpu_pods_only(post: Post) -> None:
    assert verdict(post, admission_review(jobset({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "4"})))["allowed"]
    denied = verdict(post, admission_review(jobset({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "8"})))
    assert denied["allowed"] is False and denied["status"]["code"] == 403 and "32" in denied["status"]["message"]


def test_v1beta1_review_is_answered_in_v1beta1(post: Post) -> None:
    review = admission_review(trainjob({"meshctx.io/tp-size": "3"}))
    review["apiVersion"] = "admission.k8s.io/v1beta1"
    assert verdict(post, review)["allowed"] is False


def test_trainjob_rendered_by_the_api_is_admitted_and_scaling_it_is_denied(post: Post) -> None:
    body = {"strategy": "fsdp2", "nnodes": 4, "nproc_per_node": 8, "sizes": {"tp_size": 8, "pp_size": 2}}
    rendered = post("/v1/render/trainjob", json=body | {"image": "repo/train:1"})
    assert rendered.status_code == 200, rendered.text
    job = rendered.json()["rendering"]["data"]
    assert verdict(post, admission_review(copy.deepcopy(job)))["allowed"] is True
    job["spec"]["trainer"]["numNodes"] = 8
    assert "world_size_mismatch" in verdict(post, admission_review(job))["status"]["message"]


def test_kueue_unsuspend_and_finalizer_removal_pass_and_a_resize_is_checked(post: Post) -> None:
    old = trainjob({"meshctx.io/tp-size": "8", "meshctx.io/dp-size": "4"})
    old["spec"]["suspend"] = True
    unsuspended = copy.deepcopy(old)
    unsuspended["spec"]["suspend"] = False
    review = admission_review(unsuspended, "UPDATE")
    review["request"]["oldObject"] = old
    assert verdict(post, review) == {"uid": UID, "allowed": True}
    deleting = copy.deepcopy(unsuspended)
    deleting["metadata"] |= {"deletionTimestamp": "2026-12-02T10:00:00Z", "finalizers": []}
    review = admission_review(deleting, "UPDATE")
    review["request"]["oldObject"] = unsuspended | {"metadata": {**unsuspended["metadata"], "finalizers": ["x"]}}
    assert verdict(post, review)["allowed"] is True
    resized = copy.deepcopy(unsuspended)
    resized["spec"]["trainer"]["numNodes"] = 8
    review = admission_review(resized, "UPDATE")
    review["request"]["oldObject"] = unsuspended
    assert "world_size_mismatch" in verdict(post, review)["status"]["message"]


def test_indexed_job_and_torchrun_pod(post: Post) -> None:
    assert verdict(post, admission_review(indexed_job({"meshctx.io/tp-size": "8"})))["allowed"] is True
    denied = verdict(post, admission_review(indexed_job({"meshctx.io/tp-size": "3"})))
    assert denied["status"]["code"] == 403 and "Job team-a/llm on 4 nodes × 8 processes" in denied["status"]["message"]
    assert verdict(post, admission_review(pod({"meshctx.io/tp-size": "16"}, container(TORCHRUN))))["allowed"]
    assert verdict(post, admission_review(pod({"meshctx.io/tp-size": "64"}, container(TORCHRUN))))["status"]


def problem(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in answer.text
    return dict(answer.json())


def test_malformed_reviews_are_422_problems_naming_each_field(post: Post) -> None:
    """No uid, no review: nothing to answer with an AdmissionReview; the API server applies failurePolicy."""
    wrong = {"apiVersion": "v1", "kind": "Pod", "request": {"uid": UID}}
    assert {e["field"] for e in problem(post(PATH, json=wrong))["errors"]} == {"apiVersion", "kind"}
    no_uid = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}
    assert {e["field"] for e in problem(post(PATH, json=no_uid))["errors"]} == {"request.uid"}
    assert problem(post(PATH, json=[]))["errors"][0]["field"] == "body"


def test_a_review_that_cannot_be_read_is_still_answered_with_a_denial(post: Post) -> None:
    """A review that names itself (apiVersion, request.uid) but cannot be read or validated is denied in a review:
    a problem response would be a failed call, and failurePolicy Ignore would admit the workload unchecked."""
    bad_object = admission_review(trainjob({"meshctx.io/tp-size": "8"}))
    bad_object["request"]["object"] = ["not", "an", "object"]
    out = verdict(post, bad_object)
    assert out["allowed"] is False and out["status"]["code"] == 422 and "request.object" in out["status"]["message"]
    truncated = json.dumps(admission_review(trainjob(None)))[:-5]
    not_json = post(PATH, content=truncated, headers={"content-type": "application/json"})
    assert not_json.status_code == 200 and not_json.json()["response"]["uid"] == UID
    assert not_json.json()["response"]["allowed"] is False and not_json.json()["response"]["status"]["code"] == 422
    deep = "[" * 100_000 + "]" * 100_000  # past any JSON parser's depth limit
    nested = json.dumps(admission_review(trainjob({"meshctx.io/tp-size": "8"}))).replace(
        '"spec": {', f'"x": {deep}, "spec": {{', 1
    )
    answer = post(PATH, content=nested, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    response = answer.json()["response"]
    assert response["uid"] == UID and response["allowed"] is False and response["status"]["code"] in (400, 422)
