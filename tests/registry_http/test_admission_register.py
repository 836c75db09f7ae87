"""``MESHCTX_ADMISSION_REGISTER=true``: the webhook registers the workloads it admits, keyed by their UID, for the
tenant of their namespace; never on dryRun, never what it denies, the same job again on a retried review."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from meshctx.client import MeshctxClient
from tests.deploy.test_admission import admission_review, trainjob
from tests.support.servers import LiveServer

UIDS = ("0b5f2d1e-1111-4c1a-9d0e-000000000001", "0b5f2d1e-1111-4c1a-9d0e-000000000002")


def review(uid: str, annotations: dict[str, str], *, dry_run: bool = False, namespace: str = "team-a") -> Any:
    obj = trainjob(annotations, nodes=2)
    obj["metadata"] |= {"uid": uid, "namespace": namespace}
    document = admission_review(obj)
    document["request"] |= {"dryRun": dry_run, "namespace": namespace}
    return document


def test_admitted_workloads_are_registered_once(
    serve: Callable[..., LiveServer], db_url: str, tokens_file: Path
) -> None:
    server = serve(
        MESHCTX_DATABASE_URL=db_url,
        MESHCTX_TOKENS_FILE=str(tokens_file),
        MESHCTX_ADMISSION_REGISTER="true",
        MESHCTX_ADMISSION_TENANTS=json.dumps({"team-a": "team-a"}),
        MESHCTX_ADMISSION_CLUSTER="k8s",
    )

    def post(document: Any) -> dict[str, Any]:
        answer = httpx.post(f"{server.url}/v1/admission/kubernetes", json=document, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["response"])

    with MeshctxClient(server.url, token="admin-a-0123456789") as admin:
        admin.put_cluster("k8s", nodes=2, gpus_per_node=8)
        good = {"meshctx.io/tp-size": "8"}
        assert post(review(UIDS[0], good, dry_run=True))["allowed"] is True
        assert admin.list_jobs()["items"] == []  # a dry run registers nothing
        assert post(review(UIDS[0], {"meshctx.io/tp-size": "3"}))["allowed"] is False
        assert admin.list_jobs()["items"] == []  # nor does a denial
        first = post(review(UIDS[0], good))
        assert first == {"uid": admission_review(None)["request"]["uid"], "allowed": True}
        job = admin.get_job(UIDS[0])
        assert (job["cluster"], job["gpus"], job["state"], job["lease_seconds"]) == ("k8s", 16, "registered", 600)
        assert job["labels"] == {"k8s-kind": "TrainJob", "k8s-namespace": "team-a", "k8s-name": "llm"}
        assert post(copy.deepcopy(review(UIDS[0], good))) == first  # the API server retried: same job, no error
        assert admin.get_job(UIDS[0])["version"] == job["version"]
        full = post(review(UIDS[1], good))  # admitted, but the cluster is full: a warning, not a denial
        assert full["allowed"] is True and "capacity" in full["warnings"][-1] and len(full["warnings"][-1]) <= 120
        other = post(review(UIDS[1], good, namespace="elsewhere"))
        assert other["allowed"] is True and "maps to no tenant" in other["warnings"][-1]
        assert [j["job_id"] for j in admin.list_jobs()["items"]] == [UIDS[0]]
    with MeshctxClient(server.url, token="writer-b-0123456789") as stranger:
        assert stranger.list_jobs()["items"] == []  # registered for team-a only
