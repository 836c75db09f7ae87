"""One rank's view at W = 2^10 … 2^24: time and size in the library (what the CLI prints) and over HTTP
(``POST /v1/layout?rank=N`` on one uvicorn worker). Target (DESIGN "Targets"): ≤ 5 ms and ≤ 16 kB at W = 2^24.

    PYTHONPATH=src:service python bench/bench_rank_view.py [--samples 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from meshctx.config import ParallelismSizes
from meshctx.plan import plan_mesh

REPO = Path(__file__).resolve().parents[1]
SIZES = ParallelismSizes(tp_size=8, pp_size=4, ep_size=8)


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    port = 20000 + os.getpid() % 2000
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "service")]))
    env["MESHCTX_DATA_DIR"] = tempfile.mkdtemp(prefix="meshctx-bench-")
    server = subprocess.Popen(
        [sys.executable, "-m", "meshctx.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print("| W | library median | view bytes | HTTP median | HTTP bytes |")
    print("|---:|---:|---:|---:|---:|")
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=30) as client:
            for exponent in (10, 14, 17, 20, 24):
                world = 1 << exponent
                plan = plan_mesh("fsdp2", SIZES, world_size=world)
                local = []
                for i in range(args.samples):
                    start = time.perf_counter()
                    view = plan.rank_view((i * 7919) % world)
                    local.append(time.perf_counter() - start)
                size = len(json.dumps(view, separators=(",", ":")))
                body = {"strategy": "fsdp2", "world_size": world, "sizes": SIZES.to_dict()}
                remote, answer = [], b""
                for i in range(args.samples):
                    start = time.perf_counter()
                    answer = client.post("/v1/layout", params={"rank": (i * 7919) % world}, json=body).content
                    remote.append(time.perf_counter() - start)
                http = f"{_median_ms(remote):.2f} ms | {len(answer)}"
                print(f"| 2^{exponent} | {_median_ms(local):.3f} ms | {size} | {http} |")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
