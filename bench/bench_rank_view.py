"""One rank's view at W = 2^10 … 2^24: time and size in the library (what the CLI prints) and over HTTP
(``POST /v1/layout?rank=N`` on one uvicorn worker). Target (docs/contract.md "Targets"): ≤ 5 ms and ≤ 16 kB at W = 2^24.

    PYTHONPATH=src:service python bench/bench_rank_view.py [--samples 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import httpx

from meshctx.config import ParallelismSizes
from meshctx.plan import plan_mesh
from serving import meshctx_server

SIZES = ParallelismSizes(tp_size=8, pp_size=4, ep_size=8)


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    port = 20000 + os.getpid() % 2000
    print("| W | library median | view bytes | HTTP median | HTTP bytes |")
    print("|---:|---:|---:|---:|---:|")
    with meshctx_server(port, "--log-level", "warning") as url, httpx.Client(base_url=url, timeout=30) as client:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
