"""The admission gate never opens by accident (docs/contract.md): against a real ``meshctx serve``, a general planning
pool kept saturated by slow ``groups=true`` layouts cannot make the webhook answer "not checked" — admission plans
on threads of its own — and a check that cannot finish is denied, saying so, unless the site chose ``allow``.
Every verdict is counted in ``/metrics``."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.test_admission import admission_review, pytorchjob, trainjob
from tests.deploy.test_skypilot_policy import user_request
from tests.support.servers import LiveServer, start_server

ADMISSION = "/v1/admission/kubernetes"
POLICY = "/v1/policy/skypilot"
#: ~0.25 s on the planning thread each (every node count of the range is checked): with one general thread and no
#: queue, a few clients sending these back to back keep the shared pool full.
SLOW = (
    "/v1/validate",
    {"strategy": "fsdp2", "nnodes": "1:1024", "nproc_per_node": 16383, "sizes": {"tp_size": 7}},
)


def verdicts(server: LiveServer) -> dict[tuple[str, str], float]:
    text = httpx.get(server.url + "/metrics", timeout=10.0).text
    found = re.findall(r'meshctx_admission_verdicts_total\{integration="(\w+)",verdict="(\w+)"\} ([0-9.e+]+)', text)
    return {(i, v): float(n) for i, v, n in found}


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        Path(tmp_path_factory.mktemp("busy")), MESHCTX_WORK_THREADS="1", MESHCTX_WORK_QUEUE="0", MESHCTX_ACCESS_LOG="0"
    )
    yield server
    server.stop()


def test_a_saturated_general_pool_never_opens_the_gate(busy_server: LiveServer) -> None:
    stop = threading.Event()
    general: list[int] = []

    def flood() -> None:
        with httpx.Client(base_url=busy_server.url, timeout=60.0) as client:
            while not stop.is_set():
                general.append(client.post(SLOW[0], json=SLOW[1]).status_code)

    floods = [threading.Thread(target=flood) for _ in range(4)]
    for thread in floods:
        thread.start()
    try:
        with httpx.Client(base_url=busy_server.url, timeout=30.0) as client:
            # The general pool is full: a validate-class request through it is refused at once...
            for _ in range(200):
                if client.post(SLOW[0], json=SLOW[1]).status_code == 503:
                    break
            else:
                pytest.fail("the general planning pool never filled up")
            # ...yet every admission check runs, on admission's own thread.
            for _ in range(5):
                invalid = client.post(ADMISSION, json=admission_review(trainjob({"meshctx.io/tp-size": "3"}))).json()
                assert invalid["response"]["allowed"] is False, invalid
                assert invalid["response"]["status"]["code"] == 403
                assert "world_size_not_divisible" in invalid["response"]["status"]["message"]
                valid = client.post(ADMISSION, json=admission_review(trainjob({"meshctx.io/tp-size": "8"}))).json()
                assert valid["response"] == {"uid": valid["response"]["uid"], "allowed": True}
                task = {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "3"}}
                assert client.post(POLICY, json=user_request(task)).status_code == 400
    finally:
        stop.set()
        for thread in floods:
            thread.join(timeout=60)
    assert 503 in general  # the flood did saturate the shared pool
    counted = verdicts(busy_server)
    assert counted[("kubernetes", "denied")] >= 5 and counted[("kubernetes", "allowed")] >= 5
    assert counted[("skypilot", "denied")] >= 5 and counted[("kubernetes", "unchecked")] == 0


@pytest.fixture(scope="module", params=["deny", "allow"])
def hopeless_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A deadline no check can meet: every opted-in workload is unchecked, answered as the setting says."""
    server = start_server(
        Path(tmp_path_factory.mktemp(f"hopeless-{request.param}")),
        MESHCTX_CHECK_DEADLINE_S="0.000001",
        MESHCTX_ADMISSION_UNCHECKED=request.param,
        MESHCTX_ADMISSION_QUEUE="0",
    )
    server.policy = request.param  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_a_check_that_cannot_finish_is_denied_unless_allow(hopeless_server: LiveServer) -> None:
    policy = hopeless_server.policy  # type: ignore[attr-defined]
    elastic = {"minReplicas": 1, "maxReplicas": 1024}  # ~20 ms of checks: never within a microsecond
    review = admission_review(pytorchjob({"meshctx.io/tp-size": "3"}, nproc="8", elastic=elastic))
    response = httpx.post(hopeless_server.url + ADMISSION, json=review, timeout=30.0).json()["response"]
    if policy == "deny":
        assert response["allowed"] is False and response["status"]["code"] == 503
        assert "could not be checked: the check took longer than" in response["status"]["message"]
        assert "MESHCTX_ADMISSION_UNCHECKED=deny" in response["status"]["message"]
    else:
        assert response["allowed"] is True and response["warnings"][0].startswith("meshctx: not checked: the check")
    # A workload that did not opt in is never meshctx's to refuse, however busy the gate.
    untouched = admission_review(trainjob(None))
    response = httpx.post(hopeless_server.url + ADMISSION, json=untouched, timeout=30.0).json()["response"]
    assert response["allowed"] is True
    # A SkyPilot check sent while an elastic check still holds the only admission thread (answered at its
    # deadline, the thread runs on for ~20 ms) finds it busy: unchecked. Retried a bounded number of times in
    # case the thread ended before the second request arrived.
    task = {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "3"}}
    for _ in range(20):
        httpx.post(hopeless_server.url + ADMISSION, json=review, timeout=30.0)
        answer = httpx.post(hopeless_server.url + POLICY, json=user_request(task), timeout=30.0)
        if answer.status_code != 400:
            break
    if policy == "deny":
        assert answer.status_code == 503 and "refused" in answer.json()["detail"]
    else:
        assert answer.status_code == 200 and "MESHCTX_TP_SIZE" in answer.json()
    counted = verdicts(hopeless_server)
    assert counted[("kubernetes", "unchecked")] >= 2 and counted[("kubernetes", "allowed")] == 1
    assert counted[("skypilot", "unchecked")] == 1
