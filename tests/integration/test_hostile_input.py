"""Hostile workloads against a real ``meshctx serve`` on loopback: oversized and malformed Kubernetes objects and
SkyPilot tasks each get a quick verdict naming the field (a 200 AdmissionReview denying with 422, a SkyPilot
400), while a probe loop checks that ``/livez`` keeps answering the whole time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.test_admission import admission_review, container, jobset, pod, pytorchjob, trainjob
from tests.deploy.test_skypilot_policy import user_request
from tests.support.servers import LiveServer, start_server

ADMISSION = "/v1/admission/kubernetes"
POLICY = "/v1/policy/skypilot"
#: Generous for a loaded 2-core CI machine; a hung worker would take minutes.
ANSWER_S = 2.0
PROBE_S = 1.0
HUGE = 10**30
DIGITS_5000 = "9" * 5000


@dataclass
class Probe:
    """``/livez`` polled every 10 ms from a thread; every answer's latency, and any failure."""

    url: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while not self.stop.is_set():
                start = time.perf_counter()
                try:
                    status = client.get("/livez").status_code
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                self.latencies.append(time.perf_counter() - start)
                if status != 200:
                    self.failures.append(f"status {status}")
                time.sleep(0.01)


@pytest.fixture
def probed(integration_server: LiveServer) -> Iterator[httpx.Client]:
    probe = Probe(integration_server.url)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    with httpx.Client(base_url=integration_server.url, timeout=30.0) as client:
        yield client
    waited = time.monotonic()
    while len(probe.latencies) < 3 and time.monotonic() - waited < 5:
        time.sleep(0.01)  # a quick test still sees a few probes answered around its requests
    probe.stop.set()
    thread.join(timeout=10)
    assert not probe.failures, probe.failures[:5]
    assert len(probe.latencies) >= 3, "the probe loop hardly ran"
    assert max(probe.latencies) < PROBE_S, f"/livez took {max(probe.latencies):.3f} s"


def _timed_post(client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response:
    start = time.perf_counter()
    answer = client.post(path, **kwargs)
    elapsed = time.perf_counter() - start
    assert elapsed < ANSWER_S, f"{path} took {elapsed:.2f} s"
    assert "Traceback" not in answer.text
    return answer


def _denied(client: httpx.Client, review: dict[str, Any] | str) -> str:
    """POST a review (a dict, or raw JSON text); assert a 200 review denying with 422 and the uid echoed."""
    kwargs: dict[str, Any] = (
        {"content": review, "headers": {"content-type": "application/json"}}
        if isinstance(review, str)
        else {"json": review}
    )
    answer = _timed_post(client, ADMISSION, **kwargs)
    assert answer.status_code == 200, answer.text
    response = answer.json()["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is False and response["status"]["code"] == 422, response
    message: str = response["status"]["message"]
    assert message.startswith("meshctx: ") and len(message) < 2000
    return message


def _jobset_pod_annotations(value: object) -> dict[str, Any]:
    obj = jobset({"meshctx.io/tp-size": "8"})
    obj["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]["metadata"] = {"annotations": value}
    return obj


def _sized_jobset(replicas: int, parallelism: int) -> dict[str, Any]:
    obj = jobset({"meshctx.io/tp-size": "8"})
    obj["spec"]["replicatedJobs"][1]["replicas"] = replicas
    obj["spec"]["replicatedJobs"][1]["template"]["spec"]["parallelism"] = parallelism
    return obj


HOSTILE_WORKLOADS: list[tuple[str, dict[str, Any], str]] = [
    ("trainjob 10^30 nodes", trainjob({"meshctx.io/tp-size": "8"}, nodes=HUGE), "spec.trainer.numNodes"),
    ("trainjob 10^30 procs", trainjob({"meshctx.io/tp-size": "8"}, nproc=HUGE), "spec.trainer.numProcPerNode"),
    (
        "trainjob world over the limit",
        trainjob({"meshctx.io/tp-size": "8"}, nodes=2**30, nproc=8),
        "spec.trainer.numNodes: nnodes 1073741824 × nproc_per_node 8 = 8589934592 exceeds the largest world size",
    ),
    ("jobset 10^12 replicas", _sized_jobset(10**12, 10**6), "spec.replicatedJobs[1].replicas"),
    (
        "jobset 10^6 × 10^3 pods",
        _sized_jobset(10**6, 10**3),
        "spec.replicatedJobs replicas × parallelism: nnodes 1000000000",
    ),
    (
        "pytorchjob elastic 1:2,000,000",
        pytorchjob({"meshctx.io/tp-size": "8"}, elastic={"minReplicas": 1, "maxReplicas": 2_000_000}),
        "spec.elasticPolicy.minReplicas:maxReplicas",
    ),
    (
        "pytorchjob elastic min above max",
        pytorchjob({"meshctx.io/tp-size": "8"}, elastic={"minReplicas": 9, "maxReplicas": 2}),
        "minReplicas 9 is above maxReplicas 2",
    ),
    ("superscript two", trainjob({"meshctx.io/tp-size": "²"}), "meshctx.io/tp-size must be an integer"),
    ("5,000-digit annotation", trainjob({"meshctx.io/pp-size": DIGITS_5000}), "meshctx.io/pp-size"),
    ("10^30 annotation", trainjob({"meshctx.io/dp-size": str(HUGE)}), "meshctx.io/dp-size"),
    (
        "jobset pod annotations as a list",
        _jobset_pod_annotations(["meshctx.io/nproc-per-node", "8"]),
        "spec.replicatedJobs[1].template.spec.template.metadata.annotations must be a mapping",
    ),
    (
        "annotations as a list",
        {**trainjob(None), "metadata": {"name": "x", "annotations": ["meshctx.io/tp-size"]}},
        "metadata.annotations must be a mapping",
    ),
    ("strategy of 100 kB", trainjob({"meshctx.io/strategy": "x" * 100_000}), "meshctx.io/strategy"),
    (
        "$(A) × 4000 with a 100 kB A",  # 400 MB once expanded, had it been
        pod({"meshctx.io/tp-size": "8"}, container(["torchrun", "$(A)" * 4000], env={"A": "x" * 100_000})),
        "longer than 131072 characters once $(VAR) is expanded",
    ),
    (
        "GPU count above 2^64",
        pod(
            {"meshctx.io/tp-size": "8"},
            container(["torchrun", "--nnodes=1", "--nproc-per-node=gpu", "t.py"], gpus=None)
            | {"resources": {"limits": {"nvidia.com/gpu": 2**70}}},
        ),
        "nvidia.com/gpu",
    ),
]


@pytest.mark.parametrize(("case", "obj", "phrase"), HOSTILE_WORKLOADS, ids=[c for c, _, _ in HOSTILE_WORKLOADS])
def test_hostile_workload_is_denied_quickly_naming_the_field(
    probed: httpx.Client, case: str, obj: dict[str, Any], phrase: str
) -> None:
    assert phrase in _denied(probed, admission_review(obj))


def test_a_5000_digit_json_number_is_denied_naming_the_field(probed: httpx.Client) -> None:
    """Python refuses to convert such a literal (ValueError); the webhook must still give a verdict."""
    text = json.dumps(admission_review(trainjob({"meshctx.io/tp-size": "8"}, nodes=1)))
    text = text.replace('"numNodes": 1', f'"numNodes": {DIGITS_5000}')
    assert "spec.trainer.numNodes must be an integer from 1 to 2147483647, got '<an integer of 5000 digits>'" in (
        _denied(probed, text)
    )


def test_an_update_to_a_hostile_object_is_checked_too(probed: httpx.Client) -> None:
    review = admission_review(trainjob({"meshctx.io/tp-size": "8"}, nodes=HUGE), "UPDATE")
    review["request"]["oldObject"] = trainjob({"meshctx.io/tp-size": "8"})
    assert "spec.trainer.numNodes" in _denied(probed, review)


def _rejected(client: httpx.Client, task: dict[str, Any] | str) -> str:
    body = user_request(task) if isinstance(task, dict) else task
    answer = _timed_post(client, POLICY, json=body)
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/plain"), answer.text
    assert answer.text.startswith("meshctx: ")
    return answer.text


def test_hostile_skypilot_tasks_are_rejected_quickly_naming_the_field(probed: httpx.Client) -> None:
    gpus = {"accelerators": "H100:8"}
    assert "num_nodes must be an integer" in _rejected(
        probed, {"num_nodes": HUGE, "resources": gpus, "envs": {"MESHCTX_TP_SIZE": "8"}}
    )
    assert "MESHCTX_TP_SIZE must be an integer from 1 to 2147483647, got '²'" in _rejected(
        probed, {"num_nodes": 2, "resources": gpus, "envs": {"MESHCTX_TP_SIZE": "²"}}
    )
    assert "num_nodes: nnodes 2000000 × nproc_per_node 16 = 32000000 exceeds" in _rejected(
        probed, {"num_nodes": 2_000_000, "resources": {"accelerators": "H100:16"}, "envs": {"MESHCTX_TP_SIZE": "8"}}
    )
    assert "resources.accelerators" in _rejected(
        probed, {"num_nodes": 2, "resources": {"accelerators": f"H100:{HUGE}"}, "envs": {"MESHCTX_TP_SIZE": "8"}}
    )
    task = yaml.safe_dump({"resources": gpus, "envs": {"MESHCTX_TP_SIZE": "8"}}) + f"num_nodes: {DIGITS_5000}\n"
    body = json.dumps({"task": task, "skypilot_config": "{}", "request_name": "sky.launch", "user": ""})
    assert "num_nodes must be an integer from 1 to 2147483647, got '<an integer of 5000 digits>'" in _rejected(
        probed, body
    )


@pytest.mark.parametrize(
    ("task", "phrase"),
    [
        ("a: &a [*a]\nenvs: {MESHCTX_TP_SIZE: '8'}\n", "aliases"),  # refers to itself
        ("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\nenvs: {MESHCTX_TP_SIZE: '8'}\n", "aliases"),
        ("envs: {MESHCTX_TP_SIZE: '8'}\nx: " + "[" * 100_000, "nested deeper than 64"),
    ],
    ids=["self-referencing anchor", "anchors of anchors", "nested 100,000 deep"],
)
def test_skypilot_yaml_aliases_and_deep_nesting_are_a_422(probed: httpx.Client, task: str, phrase: str) -> None:
    answer = _timed_post(probed, POLICY, json={"task": task, "skypilot_config": ""})
    assert answer.status_code == 422, answer.text
    assert phrase in answer.text and len(answer.text) < 2000


def test_after_the_hostile_requests_valid_ones_still_pass(probed: httpx.Client) -> None:
    answer = _timed_post(probed, ADMISSION, json=admission_review(trainjob({"meshctx.io/tp-size": "8"})))
    assert answer.json()["response"]["allowed"] is True


def test_largest_allowed_checks_plan_off_the_event_loop(probed: httpx.Client) -> None:
    """Elastic ranges at the span limit plan every node count (a tenth of a second or more each); several at
    once must not stall ``/livez`` (the probe fixture checks it)."""
    elastic = {"minReplicas": 1, "maxReplicas": 1024}
    review = admission_review(pytorchjob({"meshctx.io/tp-size": "3"}, nproc="8", elastic=elastic))
    results: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=str(probed.base_url), timeout=30.0) as client:
            results.append(client.post(ADMISSION, json=review).status_code)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [200] * 10


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # One planning thread and no queue: a check past its deadline keeps the thread until it ends, so the
    # next check finds the pool full; both are answered as their scheduler expects, never left waiting.
    server = start_server(
        Path(tmp_path_factory.mktemp("impatient")),
        MESHCTX_CHECK_DEADLINE_S="0.000001",
        MESHCTX_ADMISSION_THREADS="1",
        MESHCTX_ADMISSION_QUEUE="0",
    )
    yield server
    server.stop()


def test_a_check_past_its_deadline_is_answered_unchecked(impatient_server: LiveServer) -> None:
    """Before the API server's timeout would apply failurePolicy (Ignore) anyway: denied, saying why (the
    default ``MESHCTX_ADMISSION_UNCHECKED=deny``)."""
    elastic = {"minReplicas": 1, "maxReplicas": 1024}
    review = admission_review(pytorchjob({"meshctx.io/tp-size": "3"}, nproc="8", elastic=elastic))
    answer = httpx.post(impatient_server.url + ADMISSION, json=review, timeout=30.0)
    assert answer.status_code == 200
    response = answer.json()["response"]
    assert response["allowed"] is False and response["status"]["code"] == 503
    assert "could not be checked: the check took" in response["status"]["message"]
    # A SkyPilot check sent while an elastic check still holds the only planning thread (the webhook answered at
    # its deadline, the thread runs on for ~20 ms) finds the pool full: SkyPilot gets a 503, as when the policy
    # is down. The pair is retried a bounded number of times in case the thread ended before the second arrived.
    task = {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "8"}}
    for _ in range(20):
        httpx.post(impatient_server.url + ADMISSION, json=review, timeout=30.0)
        refused = httpx.post(impatient_server.url + POLICY, json=user_request(task), timeout=30.0)
        if refused.status_code != 200:
            break
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
