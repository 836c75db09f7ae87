"""The worked examples of docs/placement.md, built deterministically; ``python -m meshctx.place.examples``
prints their tables (the numbers in the docs come from here, not from a hand)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..plan import MeshPlan, plan_mesh
from ..plan.sizes import ParallelismSizes
from .hostlist import format_hostlist
from .placer import place
from .report import Crossing, Placement
from .topology import TIER_NAMES, Node, Topology


@dataclass(frozen=True)
class Example:
    title: str
    description: str
    plan: MeshPlan
    topology: Topology
    allocation: tuple[str, ...]

    def placement(self) -> Placement:
        return place(self.plan, self.topology, self.allocation)


def _cloud_name(i: int) -> str:
    """A GKE-style node name whose suffix has nothing to do with the rack (a hash of the index)."""
    return "gke-a1b2-" + hashlib.sha256(f"node-{i}".encode()).hexdigest()[:5]


def nvl72() -> Example:
    """8 GB200 NVL72-like racks (18 nodes × 4 GPUs per NVLink domain, 2 racks per leaf, 4 per spine),
    partial racks allocated, GKE-style hostnames unrelated to racks; tp=8 spans 2 nodes, ep=32 spans 8."""
    nodes = [
        Node(_cloud_name(i), 4, f"clique-{i // 18}", f"subblock-{i // 36}", f"block-{i // 72}") for i in range(144)
    ]
    taken = (16, 18, 14, 12, 18, 16, 16, 18)  # nodes allocated in each rack: 128 in all
    allocation = tuple(nodes[rack * 18 + j].name for rack, count in enumerate(taken) for j in range(count))
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=32, pp_size=2, dp_replicate_size=2), world_size=512)
    return Example(
        "NVL72-like racks, cloud hostnames",
        "144 nodes in 8 NVLink domains of 18 nodes × 4 GPUs (2 domains per leaf, 4 per spine); 128 nodes "
        f"allocated ({', '.join(map(str, taken))} per rack); fsdp2 tp=8, ep=32, pp=2, dp_replicate=2 (W=512).",
        plan,
        Topology.of(nodes),
        allocation,
    )


def dgx() -> Example:
    """128 DGX-like nodes (8 GPUs, NVLink inside the node only), 32 per leaf, 2 leaves per spine,
    unpadded hostnames (``dgx2`` sorts after ``dgx19`` as a string); an uneven 96-node allocation."""
    nodes = [Node(f"dgx{i + 1}", 8, None, f"leaf{i // 32}", f"spine{i // 64}") for i in range(128)]
    allocation = tuple(
        n.name for n in nodes if any(lo <= int(n.name[3:]) <= hi for lo, hi in ((1, 30), (33, 52), (65, 90), (97, 116)))
    )
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8, cp_size=2, ep_size=16, pp_size=4), world_size=768)
    return Example(
        "DGX-like nodes, 32 per leaf, uneven allocation",
        f"128 nodes × 8 GPUs, 32 per leaf, 2 leaves per spine; allocation {format_hostlist(allocation)} "
        "(30, 20, 26 and 20 nodes per leaf); fsdp2 tp=8, cp=2, ep=16, pp=4 (W=768).",
        plan,
        Topology.of(nodes),
        allocation,
    )


EXAMPLES = (nvl72, dgx)


def _cells(crossing: Crossing) -> str:
    return " / ".join(str(c) for c in crossing.as_tuple())


def markdown(example: Example) -> str:
    result = example.placement()
    lines = [
        f"### {example.title}",
        "",
        example.description,
        "",
        f"Groups crossing each tier ({' / '.join(TIER_NAMES)}):",
        "",
        "| axis | groups | lexicographic | natural | topology-sorted | meshctx | lower bound |",
        "|---|---|---|---|---|---|---|",
    ]
    baselines = result.baselines
    for axis, entry in result.axes.items():
        lines.append(
            f"| {axis} | {entry.groups} | {_cells(baselines['lexicographic'][axis])} | "
            f"{_cells(baselines['natural'][axis])} | {_cells(baselines['topology'][axis])} | "
            f"{_cells(entry.crossing)} | {_cells(entry.lower_bound)} |"
        )
    slurm = result.launch.slurm
    lines += ["", f"First node ranks: {', '.join(result.order[:4])}, …"]
    search, gap = result.search, result.gap
    proof = f"optimal ({search.proof})" if search.optimal else "not proven optimal"
    where = (
        f"; first entry above its bound: {gap.axis} at {gap.tier}, {gap.crossing} vs {gap.lower_bound}"
        if gap is not None
        else ""
    )
    lines.append(f"Search: {search.orders} hierarchical orders, {proof}{where}.")
    if slurm.segment is not None:
        lines.append(f"Slurm suggestion: `--segment={slurm.segment}` — {slurm.segment_reason}")
    annotations = result.launch.kueue.annotations
    if annotations:
        pairs = ", ".join(f"`{k}: {v}`" for k, v in annotations.items())
        lines.append(f"Kueue annotations: {pairs}")
    return "\n".join(lines) + "\n"


def main() -> None:
    print("\n".join(markdown(build()) for build in EXAMPLES), end="")


if __name__ == "__main__":
    main()
