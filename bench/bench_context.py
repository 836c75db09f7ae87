"""MeshContext costs, measured against the NeMo way of doing the same thing in the same run (torch ``fake`` backend).

1. Size-property access (cached) vs. slicing the mesh on every call (``mesh["tp"].size()``, ``mesh["dp"].size()``).
2. ``MeshContext.build`` (plan + create groups + read the meshes back and compare fingerprints) vs. raw
   ``init_device_mesh`` + the three flattens + the MoE unflatten, for the same topology.

    python bench/bench_context.py [--worlds 64 1024 16384] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch.distributed as dist  # noqa: E402
from torch.distributed.device_mesh import init_device_mesh  # noqa: E402
from torch.testing._internal.distributed.fake_pg import FakeStore  # noqa: E402

from meshctx import FSDP2Config, MeshContext, ParallelismSizes  # noqa: E402

FSDP2 = ("pp", "dp_replicate", "dp_shard", "cp", "tp")


def topology(world: int) -> ParallelismSizes:
    tp = min(8, world)
    pp = 2 if world >= 64 else 1
    return ParallelismSizes(tp_size=tp, pp_size=pp, dp_replicate_size=2, ep_size=min(8, world // pp))


def raw_build(sizes: ParallelismSizes, world: int) -> None:
    """What a training script does by hand (NeMo Automodel's mesh code path)."""
    dp = world // (sizes.tp_size * sizes.pp_size * sizes.cp_size)
    replicate = sizes.dp_replicate_size or 1
    shape = (sizes.pp_size, replicate, dp // replicate, sizes.cp_size, sizes.tp_size)
    mesh = init_device_mesh("cpu", shape, mesh_dim_names=FSDP2)
    mesh[("dp_replicate", "dp_shard")]._flatten("dp")
    mesh[("dp_shard", "cp")]._flatten("dp_shard_cp")
    mesh[("dp_replicate", "dp_shard", "cp")]._flatten("dp_cp")
    stage = mesh[("dp_replicate", "dp_shard", "cp", "tp")]._flatten()
    stage._unflatten(0, (stage.size() // sizes.ep_size, sizes.ep_size), ("ep_shard", "ep"))


def median_seconds(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(world: int, repeats: int) -> str:
    dist.init_process_group("fake", rank=world - 1, world_size=world, store=FakeStore())
    try:
        sizes = topology(world)
        ctx = MeshContext.build(FSDP2Config(), sizes)
        mesh = ctx.device_mesh
        assert mesh is not None
        n = 200_000
        prop = min(timeit.repeat(lambda: ctx.tp_size + ctx.dp_size, number=n, repeat=3)) / (2 * n)  # type: ignore[operator]
        m = 200 if world > 4096 else 2000
        slice_tp = min(timeit.repeat(lambda: mesh["tp"].size(), number=m, repeat=3)) / m
        slice_dp = min(timeit.repeat(lambda: mesh["dp"].size(), number=m, repeat=3)) / m
        build = median_seconds(lambda: MeshContext.build(FSDP2Config(), sizes), repeats)
        raw = median_seconds(lambda: raw_build(sizes, world), repeats)
    finally:
        dist.destroy_process_group()
    return (
        f"{world:>6} {prop * 1e9:>8.0f} {slice_tp * 1e6:>11.1f} {slice_dp * 1e6:>11.1f} "
        f"{slice_tp / prop:>6.0f}x {build * 1e3:>9.1f} {raw * 1e3:>8.1f} {build / raw:>8.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worlds", type=int, nargs="+", default=[64, 1024, 16384])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # torch warns on every flattened-axis slice from the root
    print(
        f"{'W':>6} {'prop ns':>8} {'slice tp us':>11} {'slice dp us':>11} {'ratio':>7} "
        f"{'build ms':>9} {'raw ms':>8} {'build/raw':>9}"
    )
    for world in args.worlds:
        print(measure(world, args.repeats))


if __name__ == "__main__":
    main()
