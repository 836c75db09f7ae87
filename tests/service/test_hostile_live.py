"""Hostile and very large requests against a real server (uvicorn on loopback): health probes keep answering
while the largest allowed requests run, and malformed ones are 4xx on a connection that stays usable.

The strict head-of-line target (``/livez`` p99 ≤ 20 ms) is measured by ``bench/bench_head_of_line.py``; here the
bound is generous so the test holds on a loaded 2-core machine, yet a request planned on the event loop for
seconds (what the issue measured: 5–57 s) fails it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.servers import LiveServer, start_server

PROBE_P99_BOUND_S = 0.25
HUGE = 1 << 24
HOSTILE: list[tuple[str, dict[str, object]]] = [
    (
        "/v1/validate",
        {
            "strategy": "fsdp2",
            "nnodes": "1:1024",
            "nproc_per_node": 16383,
            "sizes": {"tp_size": 7},
            "model": {"num_attention_heads": 2**31 - 1, "num_experts": 2**31 - 2},
        },
    ),
    (
        "/v1/layout",
        {
            "strategy": "fsdp2",
            "world_size": HUGE,
            "sizes": {"tp_size": 8, "ep_size": 64, "pp_size": 4},
            "cluster": {"gpus_per_node": 6, "nvlink_domain": 2**31 - 1},
        },
    ),
    ("/v1/layout?rank=16777215", {"strategy": "fsdp2", "world_size": HUGE, "sizes": {"tp_size": 8}}),
    ("/v1/layout?groups=true", {"strategy": "fsdp2", "world_size": 131072, "sizes": {"tp_size": 8, "ep_size": 8}}),
    (
        "/v1/render/torchrun",
        {"strategy": "fsdp2", "nnodes": "1:1024", "nproc_per_node": 16383, "sizes": {"tp_size": 7}},
    ),
    (
        "/v1/validate",
        {
            "strategy": "fsdp2",
            "world_size": 7 * 16381,
            "sizes": {"tp_size": 7},
            "cluster": {"gpus_per_node": 7, "nvlink_domain": 11},
        },
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("hostile"))
    yield live
    live.stop()


PROBE_SCRIPT = """
import json, signal, sys, time, httpx
latencies, failures, stop = [], [], []
signal.signal(signal.SIGTERM, lambda *_: stop.append(True))  # SIGTERM: stop early, still report
end = time.monotonic() + float(sys.argv[2])
with httpx.Client(base_url=sys.argv[1], timeout=5.0) as client:
    while time.monotonic() < end and not stop:
        start = time.perf_counter()
        try:
            status = client.get("/livez").status_code
        except httpx.HTTPError as error:
            failures.append(repr(error))
            continue
        latencies.append(time.perf_counter() - start)
        if status != 200:
            failures.append(status)
        time.sleep(0.005)
print(json.dumps({"latencies": latencies, "failures": failures}))
"""


class Probe:
    """``GET /livez`` in a loop from a process of its own (so this process's threads cannot delay it), on one
    keep-alive connection, recording each latency and any failure."""

    def __init__(self, url: str, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PROBE_SCRIPT, url, str(seconds)], stdout=subprocess.PIPE, text=True
        )
        self.latencies: list[float] = []
        self.failures: list[object] = []

    def join(self) -> None:
        out, _ = self.process.communicate(timeout=120)
        result = json.loads(out)
        self.latencies, self.failures = result["latencies"], result["failures"]

    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98]


def _post(url: str, path: str, body: dict[str, object]) -> tuple[int, int, float]:
    start = time.perf_counter()
    response = httpx.post(url + path, json=body, timeout=60.0)
    return response.status_code, len(response.content), time.perf_counter() - start


def test_probes_answer_while_the_largest_requests_run(server: LiveServer) -> None:
    probe = Probe(server.url, 12.0)
    time.sleep(1.0)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(HOSTILE)) as pool:
        results = list(pool.map(lambda case: _post(server.url, *case), HOSTILE * 2))
    assert time.monotonic() - started < 11.0, "the probe must outlast the hostile requests"
    probe.join()
    for (path, _), (status, _size, seconds) in zip(HOSTILE * 2, results):
        assert status in (200, 503), (path, status)  # 503: the bounded pool refused or timed out, as designed
        assert seconds < 30, (path, seconds)
    rank_view = results[2]
    assert rank_view[0] == 200 and rank_view[1] <= 16_000
    assert not probe.failures, probe.failures[:5]
    assert len(probe.latencies) > 20
    assert probe.p99() < PROBE_P99_BOUND_S, f"/livez p99 {probe.p99() * 1000:.0f} ms while hostile requests ran"


def test_requests_beyond_the_limits_are_refused_naming_the_field(server: LiveServer) -> None:
    cases = [
        ({"strategy": "fsdp2", "world_size": HUGE + 1}, "world_size"),
        ({"strategy": "fsdp2", "nnodes": "1:1025", "nproc_per_node": 8}, "nnodes"),
        ({"strategy": "fsdp2", "nnodes": "1:2048", "nproc_per_node": 16383}, "nnodes"),
        ({"strategy": "fsdp2", "world_size": 8, "sizes": {"tp_size": 2**31}}, "sizes.tp_size"),
    ]
    for body, field in cases:
        for path in ("/v1/validate", "/v1/layout"):
            response = httpx.post(server.url + path, json=body, timeout=30.0)
            assert response.status_code == 422, (path, body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert field in {e["field"] for e in response.json()["errors"]}, response.json()


MALFORMED: list[tuple[str, bytes]] = [
    ("5,000-digit world size", b'{"strategy":"fsdp2","world_size":' + b"9" * 5000 + b"}"),
    ("5,000-digit size", b'{"strategy":"fsdp2","world_size":8,"sizes":{"tp_size":' + b"9" * 5000 + b"}}"),
    ("5,000-digit nnodes", b'{"strategy":"fsdp2","nnodes":' + b"9" * 5000 + b',"nproc_per_node":8}'),
    ("float overflow", b'{"strategy":"fsdp2","world_size":1e999}'),
    ("not UTF-8", b'{"strategy":"\xff\xfe","world_size":8}'),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("lone surrogate", b'{"strategy":"\\udc80","world_size":8}'),
    ("not JSON", b"strategy: fsdp2\nworld_size: &a [*a]\n"),
]


@pytest.mark.parametrize("path", ["/v1/validate", "/v1/layout", "/v1/render/torchrun"])
def test_malformed_bodies_are_422_and_the_connection_survives(server: LiveServer, path: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:  # one keep-alive connection throughout
        for name, body in MALFORMED:
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 422, (name, response.status_code, response.text[:300])
            assert response.json()["errors"], name
            assert client.get("/livez").status_code == 200, name


def test_layout_and_validate_refuse_the_same_bodies_alike(server: LiveServer) -> None:
    for body in (b"{", b'{"strategy": "fsdp2"}', b'{"strategy":"fsdp2","world_size":"8"}', b"\xff"):
        answers = [httpx.post(server.url + p, content=body, timeout=10.0) for p in ("/v1/validate", "/v1/layout")]
        assert [a.status_code for a in answers] == [422, 422], body
        assert answers[0].json()["errors"] == answers[1].json()["errors"]


def test_render_needs_a_token_when_validate_is_closed(tmp_path: Path) -> None:
    tokens = json.dumps({"reader-0123456789": {"tenant": "acme", "role": "read"}})
    closed = start_server(tmp_path, MESHCTX_TOKENS=tokens, MESHCTX_OPEN_VALIDATE="false")
    body = {"strategy": "fsdp2", "nnodes": 1, "nproc_per_node": 8, "sizes": {"tp_size": 8}}
    try:
        for path in ("/v1/render/torchrun", "/v1/validate", "/v1/layout"):
            refused = httpx.post(closed.url + path, json={**body, "world_size": None} if "render" not in path else body)
            assert refused.status_code == 401, (path, refused.text)
            allowed = httpx.post(closed.url + path, json=body, headers={"Authorization": "Bearer reader-0123456789"})
            assert allowed.status_code == 200, (path, allowed.text)
    finally:
        closed.stop()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_listing_every_group_streams_and_memory_returns(server: LiveServer) -> None:
    body = {"strategy": "fsdp2", "world_size": 131072, "sizes": {"tp_size": 8, "ep_size": 8}}
    for _ in range(3):
        with httpx.stream("POST", server.url + "/v1/layout?groups=true", json=body, timeout=60.0) as response:
            assert response.status_code == 200
            data = b"".join(response.iter_bytes())
    listing = json.loads(data)
    assert [len(g) for g in listing["groups"]["tp"][:2]] == [8, 8] and len(listing["groups"]["tp"]) == 16384
    assert listing["groups"]["dp"][0][:3] == [0, 8, 16] and listing["fingerprint"].startswith("sha256:")
    assert _rss_mb(server.process.pid) < 90.0  # docs/contract.md "Targets": RSS ≤ 90 MB after any allowed request


def test_streamed_listing_equals_the_library(server: LiveServer) -> None:
    from meshctx.config import ParallelismSizes
    from meshctx.plan import plan_mesh

    cases = [
        (
            {
                "strategy": "fsdp2",
                "world_size": 4096,
                "sizes": {"tp_size": 4, "cp_size": 2, "pp_size": 2, "ep_size": 8},
            },
            plan_mesh("fsdp2", ParallelismSizes(tp_size=4, cp_size=2, pp_size=2, ep_size=8), world_size=4096),
        ),
        (
            {"strategy": "megatron_fsdp", "ranks": [9, 3, 5, 7, 11, 13], "sizes": {"cp_size": 2}},
            plan_mesh("megatron_fsdp", ParallelismSizes(cp_size=2), ranks=[9, 3, 5, 7, 11, 13]),
        ),
    ]
    for body, plan in cases:
        response = httpx.post(server.url + "/v1/layout?groups=true", json=body, timeout=30.0)
        assert response.status_code == 200, response.text
        assert response.json() == json.loads(json.dumps(plan.to_dict(groups=True)))
