"""Whatever a workload holds (wrong types anywhere, any annotation values), an AdmissionReview with a
uid gets a 200 review back, never a 5xx: the API server must always get a verdict it can read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctx_service.app import create_app
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

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
NAMES = ["tp-size", "pp-size", "dp-size", "ep-size", "strategy", "nproc-per-node", "fingerprint", "num-attention-heads"]
KEYS = st.sampled_from([f"meshctx.io/{name}" for name in NAMES])
VALUES = st.sampled_from(["1", "2", "3", "8", "16", "0", "-1", "x", "fsdp2", "ddp", "sha256:0"]) | JSON
ANNOTATIONS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=4)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


@st.composite
def workloads(draw: st.DrawFn) -> dict[str, Any]:
    """A real TrainJob/PyTorchJob/JobSet/Job/Pod with meshctx annotations, then one field replaced by any JSON."""
    annotations = draw(ANNOTATIONS)
    torchrun_pod = lambda a: pod(a, container(TORCHRUN))  # noqa: E731
    obj = draw(st.sampled_from([trainjob, pytorchjob, jobset, indexed_job, torchrun_pod]))(annotations)
    paths = [p for p in _paths(obj) if p[:1] != ("kind",) and p[:1] != ("apiVersion",)]
    path = draw(st.sampled_from(paths))
    target: Any = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = draw(JSON)
    return obj


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def test_any_workload_gets_a_review_back(client: TestClient) -> None:
    @given(obj=workloads(), old=st.none() | workloads(), operation=st.sampled_from(["CREATE", "UPDATE"]))
    @settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    def check(obj: dict[str, Any], old: dict[str, Any] | None, operation: str) -> None:
        review = admission_review(obj, operation)
        review["request"]["oldObject"] = old if operation == "UPDATE" else None
        answer = client.post("/v1/admission/kubernetes", json=review)
        assert answer.status_code == 200, answer.text
        response = answer.json()["response"]
        assert response["uid"] == review["request"]["uid"] and isinstance(response["allowed"], bool)
        if not response["allowed"]:
            assert response["status"]["code"] in (403, 422) and response["status"]["message"].startswith("meshctx")

    check()
