"""Planner speed vs torch's own mesh build, same topologies, same process.

For each world size W it times ``validate_topology(...).to_dict()`` (plan + validate + the compact
wire layout) and, when torch is installed, building the same meshes with torch's ``fake`` backend
(``init_device_mesh`` + the three flattens + the MoE unflatten, as MeshContext does), then prints
the ratio. The torch side runs in a child process per W with a time limit, because at large W it
creates one process group per mesh row and can take minutes.

    python bench/bench_plan.py [--max-world 131072] [--torch-limit 240]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from meshctx import ParallelismSizes  # noqa: E402
from meshctx.plan import memo, validate_topology  # noqa: E402


def topology(world: int) -> ParallelismSizes:
    """A realistic MoE topology for W ranks: tp within a node, pp and HSDP when there is room."""
    tp = min(8, world)
    pp = 4 if world >= 256 else 1
    replicate = 2 if world // (tp * pp) >= 4 else None
    ep = min(8, world // pp)
    return ParallelismSizes(tp_size=tp, pp_size=pp, ep_size=ep, dp_replicate_size=replicate)


def time_planner(world: int, repeats: int, *, cold: bool) -> list[float]:
    """Warm: the topology was planned before (its layout and fingerprint are memoized, as in a long-running
    service). Cold: those caches are emptied before every call, so each call lays the topology out anew."""
    sizes = topology(world)
    samples = []
    for _ in range(repeats):
        if cold:
            clear_plan_caches()
        start = time.perf_counter()
        body = validate_topology("fsdp2", sizes, world_size=world).to_dict()
        samples.append(time.perf_counter() - start)
        assert body["valid"], body
    return samples


def clear_plan_caches() -> None:
    memo.clear()


TORCH_CHILD = r"""
import json, sys, time
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.testing._internal.distributed.fake_pg import FakeStore
world, sizes = int(sys.argv[1]), json.loads(sys.argv[2])
dist.init_process_group("fake", rank=0, world_size=world, store=FakeStore())
start = time.perf_counter()
mesh = init_device_mesh("cpu", tuple(sizes["shape"]), mesh_dim_names=("pp", "dp_replicate", "dp_shard", "cp", "tp"))
mesh[("dp_replicate", "dp_shard")]._flatten("dp")
mesh[("dp_shard", "cp")]._flatten("dp_shard_cp")
mesh[("dp_replicate", "dp_shard", "cp")]._flatten("dp_cp")
if sizes["ep"] > 1:
    stage = mesh[("dp_replicate", "dp_shard", "cp", "tp")]._flatten()
    stage._unflatten(0, (sizes["ep_shard"], sizes["ep"]), ("ep_shard", "ep"))
print(time.perf_counter() - start)
"""


def time_torch(world: int, limit: float) -> float | None:
    plan = validate_topology("fsdp2", topology(world), world_size=world).plan
    assert plan is not None and plan.device_mesh is not None
    sizes = {"shape": list(plan.device_mesh.shape), "ep": plan.sizes.ep, "ep_shard": plan.sizes.ep_shard}
    try:
        done = subprocess.run(
            [sys.executable, "-c", TORCH_CHILD, str(world), json.dumps(sizes)],
            capture_output=True,
            text=True,
            timeout=limit,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-world", type=int, default=131072)
    parser.add_argument("--torch-limit", type=float, default=240.0, help="seconds per torch build")
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401

        have_torch = not args.no_torch
    except ImportError:
        have_torch = False

    print(
        f"{'W':>7}  {'cold median':>11}  {'cold p99':>9}  {'warm median':>11}  {'torch fake build':>16}  "
        f"{'ratio (cold)':>12}"
    )
    world = 8
    while world <= args.max_world:
        cold = sorted(time_planner(world, args.repeats, cold=True))
        warm = sorted(time_planner(world, args.repeats, cold=False))
        median, p99 = statistics.median(cold), cold[int(len(cold) * 0.99) - 1]
        torch_time = time_torch(world, args.torch_limit) if have_torch else None
        torch_text = f"{torch_time * 1e3:13.1f} ms" if torch_time is not None else "       (skipped)"
        ratio = f"{torch_time / median:11.0f}x" if torch_time is not None else "           -"
        print(
            f"{world:>7}  {median * 1e6:8.1f} µs  {p99 * 1e6:6.1f} µs  {statistics.median(warm) * 1e6:8.1f} µs  "
            f"{torch_text}  {ratio}",
            flush=True,
        )
        world *= 4 if world < 32768 else 2
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")


if __name__ == "__main__":
    main()
