"""What each scheduler needs to impose an order.

No launcher knows the mesh, so each is told the order in its own terms:

- Slurm: a host file (line ``i`` = node rank ``i``) used with ``SLURM_HOSTFILE`` and
  ``srun --distribution=arbitrary``, one torchrun task per node taking ``--node-rank=$SLURM_PROCID``;
  plus ``--segment`` (topology/block) when no order of this allocation keeps a group inside its unit,
  so the next allocation comes in whole segments.
- torchrun: static rendezvous with an explicit ``--node-rank`` per host (c10d ranks nodes by hostname
  string, which is the lexicographic baseline, not this order).
- Kubernetes Indexed Job / JobSet: completion index ``i`` runs on ``order[i]``.
- Kueue TAS: slice annotations sized to each local axis's group span (one pod per node), and a check
  of an admitted ``topologyAssignment`` against the order.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from ..plan.problems import Code, Problem
from .crossings import AxisClasses
from .hostlist import format_hostlist
from .problems import place_error, sample
from .topology import TIER_NAMES, Node, Topology

#: Named per job (the batch script's shell fills it in), so jobs submitted from one directory keep their own.
HOSTFILE = '"meshctx-hosts-${SLURM_JOB_ID:-$$}.txt"'
MASTER_PORT = 29500
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
SLICE_TOPOLOGY = "kueue.x-k8s.io/podset-slice-required-topology"
SLICE_SIZE = "kueue.x-k8s.io/podset-slice-size"
SLICE_CONSTRAINTS = "kueue.x-k8s.io/podset-slice-required-topology-constraints"
PREFERRED_TOPOLOGY = "kueue.x-k8s.io/podset-preferred-topology"
#: Axes whose groups are worth keeping together by a scheduler (the latency-bound collectives).
SLICE_AXES: tuple[str, ...] = ("tp", "cp", "ep", "ep_shard")


@dataclass(frozen=True)
class SlurmLaunch:
    hostfile: tuple[str, ...]
    nodelist: str
    segment: int | None
    segment_reason: str | None
    script: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "hostfile": list(self.hostfile),
            "nodelist": self.nodelist,
            "segment": self.segment,
            "segment_reason": self.segment_reason,
            "script": list(self.script),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SlurmLaunch:
        segment = data.get("segment")
        reason = data.get("segment_reason")
        return cls(
            tuple(str(h) for h in data["hostfile"]),  # type: ignore[attr-defined]
            str(data["nodelist"]),
            int(segment) if segment is not None else None,  # type: ignore[call-overload]
            str(reason) if reason is not None else None,
            tuple(str(line) for line in data["script"]),  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class TorchrunLaunch:
    nnodes: int
    nproc_per_node: int
    master_addr: str
    master_port: int
    node_rank: Mapping[str, int]
    command: str
    """With ``{node_rank}`` to fill in per host."""

    def to_dict(self) -> dict[str, object]:
        return {
            "rdzv_backend": "static",
            "nnodes": self.nnodes,
            "nproc_per_node": self.nproc_per_node,
            "master_addr": self.master_addr,
            "master_port": self.master_port,
            "node_rank": dict(self.node_rank),
            "command": self.command,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TorchrunLaunch:
        return cls(
            int(data["nnodes"]),  # type: ignore[call-overload]
            int(data["nproc_per_node"]),  # type: ignore[call-overload]
            str(data["master_addr"]),
            int(data["master_port"]),  # type: ignore[call-overload]
            {str(k): int(v) for k, v in data["node_rank"].items()},  # type: ignore[attr-defined]
            str(data["command"]),
        )


@dataclass(frozen=True)
class KubernetesLaunch:
    nodes_by_index: tuple[str, ...]
    """Completion index ``i`` (label ``batch.kubernetes.io/job-completion-index``) runs on this node."""

    def to_dict(self) -> dict[str, object]:
        return {"index_label": INDEX_LABEL, "nodes_by_index": list(self.nodes_by_index)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> KubernetesLaunch:
        return cls(tuple(str(h) for h in data["nodes_by_index"]))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class KueueSlice:
    axis: str
    size: int
    """Pods (= nodes) in one slice: the axis's group span."""
    tier: str
    topology: str
    """The node label of ``tier``."""

    def to_dict(self) -> dict[str, object]:
        return {"axis": self.axis, "size": self.size, "tier": self.tier, "topology": self.topology}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> KueueSlice:
        return cls(str(data["axis"]), int(data["size"]), str(data["tier"]), str(data["topology"]))  # type: ignore[call-overload]


@dataclass(frozen=True)
class KueueLaunch:
    annotations: Mapping[str, str]
    """Single-level slice annotations for the pod template (the highest-priority axis that spans nodes)."""
    multi_layer_annotations: Mapping[str, str]
    """The same as one ``...-constraints`` annotation covering every sliced axis (Kueue's multi-layer
    TAS feature; exclusive with the single-level pair)."""
    slices: tuple[KueueSlice, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "annotations": dict(self.annotations),
            "multi_layer_annotations": dict(self.multi_layer_annotations),
            "slices": [s.to_dict() for s in self.slices],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> KueueLaunch:
        return cls(
            {str(k): str(v) for k, v in data["annotations"].items()},  # type: ignore[attr-defined]
            {str(k): str(v) for k, v in data["multi_layer_annotations"].items()},  # type: ignore[attr-defined]
            tuple(KueueSlice.from_dict(s) for s in data["slices"]),  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class Launch:
    slurm: SlurmLaunch
    torchrun: TorchrunLaunch
    kubernetes: KubernetesLaunch
    kueue: KueueLaunch
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "slurm": self.slurm.to_dict(),
            "torchrun": self.torchrun.to_dict(),
            "kubernetes": self.kubernetes.to_dict(),
            "kueue": self.kueue.to_dict(),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Launch:
        return cls(
            SlurmLaunch.from_dict(data["slurm"]),  # type: ignore[arg-type]
            TorchrunLaunch.from_dict(data["torchrun"]),  # type: ignore[arg-type]
            KubernetesLaunch.from_dict(data["kubernetes"]),  # type: ignore[arg-type]
            KueueLaunch.from_dict(data["kueue"]),  # type: ignore[arg-type]
            tuple(str(n) for n in data.get("notes", ())),  # type: ignore[attr-defined]
        )


def _largest_units(topology: Topology) -> dict[str, int]:
    """Per tier, nodes in its largest unit over the whole cluster (what a scheduler could still find)."""
    out = {}
    for tier in TIER_NAMES[1:]:
        sizes: dict[str, int] = {}
        for node in topology.nodes:
            value = getattr(node, tier)
            if value is not None:
                sizes[value] = sizes.get(value, 0) + 1
        out[tier] = max(sizes.values(), default=1)
    return out


def _segment(
    classes: Sequence[AxisClasses], bounds: Sequence[Sequence[int]], largest_units: Mapping[str, int]
) -> tuple[int | None, str | None]:
    """``--segment``: the span of the first local axis whose groups must cross an NVLink domain (Slurm's
    topology/block models those as blocks) in this allocation while a whole block could hold one."""
    largest = largest_units["nvlink_domain"]
    for axis, bound in zip(classes, bounds):
        if axis.axis not in SLICE_AXES or axis.span < 2 or not axis.exact:
            continue
        if bound[1] > 0 and axis.span <= largest:
            reason = (
                f"{bound[1]} of {axis.groups} {axis.axis} groups must cross an NVLink domain in this allocation "
                f"(each spans {axis.span} nodes); with topology/block, --segment={axis.span} asks Slurm for "
                f"whole {axis.span}-node segments inside one block."
            )
            return axis.span, reason
    return None, None


def _kueue(
    classes: Sequence[AxisClasses], topology: Topology, largest_units: Mapping[str, int], nodes: int
) -> KueueLaunch:
    slices: list[KueueSlice] = []
    for axis in classes:
        if axis.axis not in SLICE_AXES or axis.span < 2 or not (axis.exact and axis.contiguous):
            continue
        if any(s.size == axis.span for s in slices):
            continue
        for tier in TIER_NAMES[1:]:
            if largest_units[tier] >= axis.span:
                slices.append(KueueSlice(axis.axis, axis.span, tier, topology.label(tier)))
                break
    annotations: dict[str, str] = {}
    multi: dict[str, str] = {}
    if slices:
        annotations = {SLICE_TOPOLOGY: slices[0].topology, SLICE_SIZE: str(slices[0].size)}
        layered = sorted(slices, key=lambda s: -s.size)
        if all(a.size % b.size == 0 for a, b in pairwise(layered)) and nodes % layered[0].size == 0:
            multi = {SLICE_CONSTRAINTS: json.dumps([{"topology": s.topology, "size": s.size} for s in layered])}
    if any(n.spine is not None for n in topology.nodes):
        annotations[PREFERRED_TOPOLOGY] = topology.label("spine")
        if multi:
            multi[PREFERRED_TOPOLOGY] = topology.label("spine")
    return KueueLaunch(annotations, multi, tuple(slices))


def build_launch(
    order: Sequence[str],
    gpus_per_node: int,
    classes: Sequence[AxisClasses],
    bounds: Sequence[Sequence[int]],
    topology: Topology,
    command: Sequence[str] = ("train.py",),
    master_port: int = MASTER_PORT,
) -> Launch:
    n = len(order)
    cmd = " ".join(shlex.quote(c) for c in command)
    torchrun = (
        f"torchrun --nnodes={n} --nproc-per-node={gpus_per_node} --rdzv-backend=static "
        f"--master-addr={order[0]} --master-port={master_port} --node-rank={{node_rank}} {cmd}"
    )
    srun_inner = torchrun.replace("{node_rank}", "$SLURM_PROCID")
    script = (
        f"printf '%s\\n' {' '.join(shlex.quote(h) for h in order)} > {HOSTFILE}"
        if n <= 64
        else f"# write the {n} lines of launch.slurm.hostfile to {HOSTFILE}",
        f"export SLURM_HOSTFILE={HOSTFILE}",
        f"srun --nodes={n} --ntasks={n} --ntasks-per-node=1 --distribution=arbitrary "
        f"bash -c {shlex.quote('exec ' + srun_inner)}",
    )
    largest_units = _largest_units(topology)
    segment, reason = _segment(classes, bounds, largest_units)
    notes = (
        "torchrun's c10d rendezvous ranks nodes by hostname string; use the static rendezvous lines here "
        "(or set the node rank from launch.torchrun.node_rank) so node rank i runs on order[i].",
        "Kubernetes: pin completion index i to launch.kubernetes.nodes_by_index[i] (nodeName or a "
        "kubernetes.io/hostname affinity per index), or read the pod's node name and look up its node rank.",
    )
    return Launch(
        slurm=SlurmLaunch(tuple(order), format_hostlist(order), segment, reason, script),
        torchrun=TorchrunLaunch(n, gpus_per_node, order[0], master_port, {h: i for i, h in enumerate(order)}, torchrun),
        kubernetes=KubernetesLaunch(tuple(order)),
        kueue=_kueue(classes, topology, largest_units, n),
        notes=notes,
    )


def check_topology_assignment(
    order: Sequence[str], topology: Topology, assignment: Mapping[str, object]
) -> list[Problem]:
    """Problems with an admitted Kueue ``topologyAssignment`` (``{"levels": [label, ...], "domains":
    [{"values": [...], "count": n}]}``) for this order: it must name hosts (its last level is
    ``kubernetes.io/hostname``), put one pod on each host of the order and nowhere else, and agree with
    the topology on every level that is one of its tiers' labels (a stale topology fails here)."""
    levels = assignment.get("levels")
    domains = assignment.get("domains")
    if not isinstance(levels, list) or not isinstance(domains, list):
        raise ValueError(
            'topologyAssignment: expected {"levels": [label, ...], "domains": [{"values": [...], "count": n}]} '
            "(Kueue's v1beta1 form; read the compact form back into that first)"
        )
    hostname = topology.label("node")
    if not levels or levels[-1] != hostname:
        return [
            place_error(
                Code.ASSIGNMENT_NO_HOSTNAME_LEVEL,
                ("topologyAssignment.levels",),
                f"The assignment's levels {levels} do not end with {hostname!r}, so it does not say which node "
                "runs which pod.",
                f"Add {hostname!r} as the lowest level of the Kueue Topology (Kueue adds it to assignments when "
                "the topology has it).",
            )
        ]
    counts: dict[str, int] = {}
    values_of: dict[str, list[str]] = {}
    for i, domain in enumerate(domains):
        values = domain.get("values") if isinstance(domain, Mapping) else None
        count = domain.get("count") if isinstance(domain, Mapping) else None
        if not isinstance(values, list) or len(values) != len(levels) or not isinstance(count, int):
            raise ValueError(f"topologyAssignment.domains[{i}]: expected values (one per level) and an integer count")
        counts[str(values[-1])] = counts.get(str(values[-1]), 0) + count
        values_of[str(values[-1])] = [str(v) for v in values]
    problems: list[Problem] = []
    wanted = set(order)
    extra = sorted(set(counts) - wanted)
    missing = [h for h in order if h not in counts]
    if extra or missing:
        problems.append(
            place_error(
                Code.ASSIGNMENT_HOSTS_DIFFER,
                ("topologyAssignment.domains",),
                f"The assignment names {len(counts)} hosts, the order {len(order)}; only in the assignment: "
                f"{sample(extra) or 'none'}; only in the order: {sample(missing) or 'none'}.",
                "Compute the order from the admitted hosts (--nodes with the assignment's hostnames) and launch "
                "with that order.",
            )
        )
    uneven = sorted(h for h, c in counts.items() if c != 1)
    if uneven:
        problems.append(
            place_error(
                Code.ASSIGNMENT_PODS_PER_NODE,
                ("topologyAssignment.domains",),
                f"{len(uneven)} hosts got other than one pod: "
                + sample([f"{h}={counts[h]}" for h in uneven])
                + "; node rank i is one pod (all of its node's GPUs) on order[i].",
                "Request one pod per node with all of the node's GPUs (nvidia.com/gpu equal to the node's count).",
            )
        )
    nodes = topology.by_name()
    label_tier = {topology.label(t): t for t in TIER_NAMES[1:]}
    disagree: list[str] = []
    for host, values in values_of.items():
        node: Node | None = nodes.get(host)
        if node is None:
            continue
        for level, value in zip(levels, values):
            tier = label_tier.get(str(level))
            if tier is not None and node.value(tier) not in (None, value):
                disagree.append(f"{host} {level}={value} (topology: {node.value(tier)})")
    if disagree:
        problems.append(
            place_error(
                Code.ASSIGNMENT_DOMAIN_MISMATCH,
                ("topologyAssignment.domains", "topology"),
                f"The assignment and the topology disagree on {len(disagree)} host levels: {sample(disagree, 4)}.",
                "Re-import the topology (kubectl get nodes -o json) and place again; the order was computed for "
                "units that no longer hold.",
            )
        )
    return problems
