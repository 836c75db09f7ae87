"""Head-of-line latency: ``/livez`` while the largest allowed requests run (docs/contract.md "Targets": p99 ≤ 20 ms).

One server (``meshctx serve``, shipped defaults) on loopback. A probe process sends ``GET /livez`` on one
keep-alive connection every 5 ms for the whole run and records each latency; meanwhile this process sends each
hostile request of ``tests/service/test_hostile_live.py`` (1,024-count elastic ranges, W = 2^24 layouts with an
unaligned NVLink domain, a rank view at W = 2^24, ``groups=true`` at W = 131,072, render over 1:1024) —
first alone (probe baseline), then each several times over ``--concurrency`` connections.

    PYTHONPATH=src:service python bench/bench_head_of_line.py [--rounds 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]  # the hostile requests and the probe are the live test's own

from serving import meshctx_server  # noqa: E402
from tests.service.test_hostile_live import HOSTILE, Probe  # noqa: E402


def _quantiles(latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"p50 {1000 * q[49]:.1f} ms, p99 {1000 * q[98]:.1f} ms, max {1000 * max(latencies):.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="times each hostile request is sent")
    parser.add_argument("--concurrency", type=int, default=4, help="hostile requests in flight at once")
    args = parser.parse_args()

    port = 18000 + os.getpid() % 2000
    with meshctx_server(port) as url:
        idle = Probe(url, 3.0)
        idle.join()
        probe = Probe(url, 600.0)
        time.sleep(0.5)
        started = time.perf_counter()
        statuses: dict[str, list[int]] = {}
        with ThreadPoolExecutor(args.concurrency) as pool, httpx.Client(timeout=120) as client:

            def send(case: tuple[str, dict[str, object]]) -> tuple[str, int, float]:
                begin = time.perf_counter()
                response = client.post(url + case[0], json=case[1])
                return case[0], response.status_code, time.perf_counter() - begin

            for path, status, _seconds in pool.map(send, HOSTILE * args.rounds):
                statuses.setdefault(path, []).append(status)
        busy_s = time.perf_counter() - started
        probe.process.terminate()
        probe.join()
    print(f"{len(HOSTILE) * args.rounds} hostile requests, {args.concurrency} at a time, over {busy_s:.1f} s")
    for path, codes in statuses.items():
        print(f"  {path}: statuses {sorted(set(codes))}")
    print(f"/livez idle:            {_quantiles(idle.latencies)} ({len(idle.latencies)} probes)")
    loaded = f"{_quantiles(probe.latencies)} ({len(probe.latencies)} probes, failures: {probe.failures[:3]})"
    print(f"/livez under the load:  {loaded}")
    print("target: /livez p99 <= 20 ms under the load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
