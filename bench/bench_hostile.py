"""Hostile input (contract.md "Targets"): few-kB requests built to cost a lot, sent to every route with and without a
token, one at a time, against one ``meshctx serve`` (shipped defaults, a token file) on loopback. For each: the
status and the seconds to the answer (target: a 4xx within 2 s); meanwhile a thread probes ``/livez`` every 20 ms
(target: each ≤ 1 s) and another samples the server's RSS every 20 ms (target: peak ≤ 160 MB); after the last
request, how long until RSS is back at or below 100 MB (target: within 60 s).

    PYTHONPATH=src:service python bench/bench_hostile.py [--only SUBSTRING] [--owner service|placement|registry]

Exit status 1 when any target is missed (the cases that miss are listed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serving import meshctx_process

TOKEN = "bench-hostile-writer-token-0123456789"
ANSWER_S, LIVEZ_S, PEAK_MB, BACK_MB, BACK_WITHIN_S = 2.0, 1.0, 160.0, 100.0, 60.0
UID = "705ab4f5-6393-11e8-b7cc-42010a800002"


def review(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": UID, "operation": "CREATE", "object": obj},
    }


def pod(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    container = {
        "name": "t",
        "image": "t",
        "command": command,
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "annotations": {"meshctx.io/tp-size": "8"}},
        "spec": {"containers": [container]},
    }


ANCHORS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9)
)
DEEP = "[" * 2000 + "]" * 2000
KUBECTL_DEEP = '{"items": [' + "[" * 100_000 + "]" * 100_000 + "]}"
VALID = {"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 8}}

#: (name, method, path, body as JSON-able or raw text, owner: "service" for this branch's routes, else whose)
CASES: list[tuple[str, str, str, Any, str]] = [
    ("validate: JSON nested 2,000 deep", "POST", "/v1/validate", DEEP, "service"),
    ("validate: 10^4000 world size", "POST", "/v1/validate", '{"world_size": 1' + "0" * 4000 + "}", "service"),
    (
        "validate: elastic 1:1024 × 16383",
        "POST",
        "/v1/validate",
        {**VALID, "world_size": None, "nnodes": "1:1024", "nproc_per_node": 16383},
        "service",
    ),
    (
        "layout: groups=true over the limit",
        "POST",
        "/v1/layout?groups=true",
        {**VALID, "world_size": 1 << 24},
        "service",
    ),
    (
        "render: host a$(id)",
        "POST",
        "/v1/render/torchrun",
        {**VALID, "nnodes": 8, "nproc_per_node": 8, "world_size": None, "launch": {"master_addr": "a$(id)"}},
        "service",
    ),
    (
        "place: hostlist 400 × n[0-16383]",
        "POST",
        "/v1/place",
        {
            **VALID,
            "topology": {"nodes": [{"name": "n0", "gpus": 8}]},
            "nodes": "n[" + ",".join(["0-16383"] * 400) + "]",
        },
        "placement",
    ),
    (
        "import: slurm-conf n[0-999999]",
        "POST",
        "/v1/topology/import",
        {"format": "slurm-conf", "text": "SwitchName=s Nodes=n[0-999999]", "gpus_per_node": 8},
        "placement",
    ),
    (
        "import: slurm-yaml anchors of anchors",
        "POST",
        "/v1/topology/import",
        {"format": "slurm-yaml", "text": ANCHORS, "gpus_per_node": 8},
        "placement",
    ),
    (
        "import: kubectl text nested 100,000 deep",
        "POST",
        "/v1/topology/import",
        {"format": "kubectl", "text": KUBECTL_DEEP},
        "placement",
    ),
    (
        "import: kubectl GPU count 2^70",
        "POST",
        "/v1/topology/import",
        {
            "format": "kubectl",
            "object": {
                "items": [
                    {"metadata": {"name": "n", "labels": {}}, "status": {"capacity": {"nvidia.com/gpu": str(2**70)}}}
                ]
            },
        },
        "placement",
    ),
    (
        "webhook: $(A) × 4000, A of 100 kB",
        "POST",
        "/v1/admission/kubernetes",
        review(pod(["torchrun", "$(A)" * 4000], {"A": "x" * 100_000})),
        "service",
    ),
    (
        "webhook: review nested 2,000 deep",
        "POST",
        "/v1/admission/kubernetes",
        json.dumps(review(pod(["torchrun"], {}))).replace('"spec": {', f'"x": {DEEP}, "spec": {{', 1),
        "service",
    ),
    (
        "webhook: GPU count 2^70",
        "POST",
        "/v1/admission/kubernetes",
        review(
            {
                **pod(["torchrun", "--nproc-per-node=gpu"], {}),
                "spec": {
                    "containers": [
                        {"name": "t", "command": ["torchrun"], "resources": {"limits": {"nvidia.com/gpu": 2**70}}}
                    ]
                },
            }
        ),
        "service",
    ),
    (
        "skypilot: self-referencing anchor",
        "POST",
        "/v1/policy/skypilot",
        {"task": "a: &a [*a]\nenvs: {MESHCTX_TP_SIZE: '8'}\n", "skypilot_config": ""},
        "service",
    ),
    (
        "skypilot: anchors of anchors",
        "POST",
        "/v1/policy/skypilot",
        {"task": ANCHORS + "envs: {MESHCTX_TP_SIZE: '8'}\n", "skypilot_config": ""},
        "service",
    ),
    (
        "registry: cluster of n[0-999999]",
        "PUT",
        "/v1/clusters/hostile",
        {"nodes": 1_000_000, "gpus_per_node": 8, "topology": {"nodes": [{"name": "n[0-999999]", "gpus": 8}]}},
        "registry",
    ),
    (
        "registry: job 10^4000 nodes",
        "PUT",
        "/v1/jobs/hostile",
        '{"strategy": "fsdp2", "nnodes": 1' + "0" * 4000 + ', "nproc_per_node": 8}',
        "registry",
    ),
]


#: The largest requests the limits allow: a 200 (within the same time) is their right answer.
ALLOWED = {"validate: elastic 1:1024 × 16383"}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Watch:
    url: str
    pid: int
    livez: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    peak_mb: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def probe(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self.stop.is_set():
                start = time.perf_counter()
                try:
                    client.get("/livez").raise_for_status()
                except httpx.HTTPError as error:
                    self.failures.append(repr(error)[:120])
                self.livez.append(time.perf_counter() - start)
                time.sleep(0.02)

    def sample(self) -> None:
        while not self.stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            time.sleep(0.02)


@contextmanager
def server(port: int) -> Iterator[subprocess.Popen[str]]:
    """``meshctx serve`` with shipped defaults and a token file (bench/serving.py)."""
    tokens = Path(tempfile.mkdtemp(prefix="meshctx-hostile-")) / "tokens.yaml"
    tokens.write_text(f"{TOKEN}: {{tenant: bench, role: write}}\n")
    with meshctx_process(port, MESHCTX_TOKENS_FILE=str(tokens)) as process:
        yield process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--owner", default="", help="run the cases of this owner (service, placement, registry)")
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()
    missed: list[str] = []
    with server(args.port) as process:
        url = f"http://127.0.0.1:{args.port}"
        start_mb = rss_mb(process.pid)
        watch = Watch(url, process.pid)
        threads = [
            threading.Thread(target=watch.probe, daemon=True),
            threading.Thread(target=watch.sample, daemon=True),
        ]
        for thread in threads:
            thread.start()
        print(f"RSS at start {start_mb:.0f} MB")
        print(f"{'case':44} {'owner':9} {'token':5} {'status':>6} {'seconds':>8} {'RSS MB':>7}")
        with httpx.Client(base_url=url, timeout=30.0) as client:
            for name, method, path, body, owner in CASES:
                if args.only not in name or args.owner not in owner:
                    continue
                raw = body if isinstance(body, str) else json.dumps(body)
                for token in (False, True):
                    headers = {"content-type": "application/json"}
                    if token:
                        headers["authorization"] = f"Bearer {TOKEN}"
                    started = time.perf_counter()
                    try:
                        answer = client.request(method, path, content=raw, headers=headers)
                        status: int | str = answer.status_code
                        if path.startswith("/v1/admission/") and status == 200:  # the webhook denies in a review
                            status = "denied" if answer.json()["response"]["allowed"] is False else "ALLOWED"
                    except httpx.HTTPError as error:
                        status = type(error).__name__
                    seconds = time.perf_counter() - started
                    refused = status == "denied" or (isinstance(status, int) and 400 <= status < 500)
                    ok = seconds <= ANSWER_S and (refused or (name in ALLOWED and status == 200))
                    if not ok:
                        missed.append(f"{name} (token {token}): {status} in {seconds:.2f} s [{owner}]")
                    print(
                        f"{name:44} {owner:9} {'yes' if token else 'no':5} {status!s:>6} {seconds:8.2f} "
                        f"{rss_mb(process.pid):7.0f}"
                    )
        watch.stop.set()
        for thread in threads:
            thread.join()
        waited = time.monotonic()
        while rss_mb(process.pid) > BACK_MB and time.monotonic() - waited < BACK_WITHIN_S:
            time.sleep(0.5)
        back_s, back_mb = time.monotonic() - waited, rss_mb(process.pid)
    slowest = max(watch.livez) if watch.livez else float("nan")
    print(f"/livez: {len(watch.livez)} probes, slowest {slowest:.3f} s, {len(watch.failures)} failed")
    print(f"RSS: peak {watch.peak_mb:.0f} MB, {back_mb:.0f} MB {back_s:.1f} s after the last request")
    if slowest > LIVEZ_S or watch.failures:
        missed.append(f"/livez slowest {slowest:.3f} s, failures {watch.failures[:3]}")
    if watch.peak_mb > PEAK_MB:
        missed.append(f"peak RSS {watch.peak_mb:.0f} MB > {PEAK_MB:.0f}")
    if back_mb > BACK_MB:
        missed.append(f"RSS {back_mb:.0f} MB > {BACK_MB:.0f} after {back_s:.0f} s")
    for line in missed:
        print("MISSED:", line)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
