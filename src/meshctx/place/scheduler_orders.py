"""What each scheduler needs to impose an order — in forms today's schedulers accept.

No launcher knows the mesh, and no scheduler lets a job pick which task lands on which node, so the order
travels with the job and every node finds its own node rank in it, by its own name:

- One launcher script (``launcher``), the same everywhere: node rank = the position of ``$MESHCTX_NODE``
  in ``$MESHCTX_ORDER`` (a space-separated host list); node rank 0 (``order[0]``) hosts torchrun's static
  rendezvous. It exits with a message when the node is not in the order.
- Slurm: ``srun --ntasks-per-node=1`` with ``MESHCTX_NODE=$SLURMD_NODENAME`` (each task's own node
  name) — no ``--distribution=arbitrary`` or ``SLURM_HOSTFILE`` (refused with topology/block); the
  rendezvous address is ``order[0]``'s host name. ``--segment`` (topology/block) when the allocation
  forces local groups across blocks.
- Kubernetes: ``MESHCTX_NODE`` from ``spec.nodeName`` through the downward API — no completion-index
  pinning; the rendezvous address is a headless Service selecting the one leader pod, which is the pod
  placed on ``order[0]`` (``nodeSelector: kubernetes.io/hostname``); the other pods go wherever the
  scheduler (Kueue TAS) puts them inside the allocation.
- Kueue TAS: slice annotations its webhook accepts (one level per label, at most 3, outermost first,
  sizes dividing; ``pkg/controller/jobframework/tas_validation.go``), only at levels the topology has,
  and a check of an admitted ``topologyAssignment`` (v1beta1 ``domains`` or v1beta2 ``slices``).

Every host name that reaches a shell line is an RFC 1123 host name (``check_allocation`` refuses others)
and is shell-quoted where it appears.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..launch.indexed_job import rendezvous_service
from ..launch.spec import DEFAULT_MASTER_PORT
from ..plan.problems import Code, Problem
from .crossings import AxisClasses
from .hostlist import format_hostlist
from .problems import place_error, sample
from .topology import TIER_NAMES, Node, Topology

SLICE_TOPOLOGY = "kueue.x-k8s.io/podset-slice-required-topology"
SLICE_SIZE = "kueue.x-k8s.io/podset-slice-size"
SLICE_CONSTRAINTS = "kueue.x-k8s.io/podset-slice-required-topology-constraints"
PREFERRED_TOPOLOGY = "kueue.x-k8s.io/podset-preferred-topology"
#: Axes whose groups are worth keeping together by a scheduler (the latency-bound collectives).
SLICE_AXES: tuple[str, ...] = ("tp", "cp", "ep", "ep_shard")
#: Kueue's webhook accepts at most this many slice layers.
KUEUE_MAX_LAYERS = 3
ORDER_ENV = "MESHCTX_ORDER"
NODE_ENV = "MESHCTX_NODE"
HOSTNAME_LABEL = "kubernetes.io/hostname"
RENDEZVOUS_SERVICE = "meshctx-rendezvous"
LEADER_LABELS: Mapping[str, str] = {"meshctx.io/role": "leader"}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def valid_host_name(name: str) -> bool:
    """An RFC 1123 host name: dot-separated labels of letters, digits and '-', 1-63 characters each, not
    starting or ending with '-', 253 characters at most. Nothing else reaches a rendered shell line."""
    return len(name) <= 253 and _HOST.fullmatch(name) is not None


def launcher(command: str, master: str = "$1") -> str:
    """The node-rank lookup and torchrun line that every node runs (bash). ``command`` is the torchrun
    line with ``{node_rank}`` and ``{master_addr}`` to fill; ``master`` is the rendezvous address as a
    shell word (default ``$1``: the first host of the order)."""
    return (
        "set -e; rank=-1; i=0; "
        f'for h in ${ORDER_ENV}; do if [ "$h" = "${NODE_ENV}" ]; then rank=$i; fi; i=$((i + 1)); done; '
        f'if [ "$rank" -lt 0 ]; then echo "meshctx: node ${NODE_ENV} is not in {ORDER_ENV}" >&2; exit 1; fi; '
        f"set -- ${ORDER_ENV}; exec {command.replace('{node_rank}', '$rank').replace('{master_addr}', master)}"
    )


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class KubernetesLaunch:
    """One leader pod on ``order[0]`` behind a headless Service (the stable rendezvous address), the other
    pods anywhere in the allocation; every pod reads its node name from ``spec.nodeName`` and finds its
    node rank in the order. No pod is pinned to a completion index."""

    leader_node: str
    env: tuple[Mapping[str, object], ...]
    service: Mapping[str, object]
    command: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "leader_node": self.leader_node,
            "leader_node_selector": {HOSTNAME_LABEL: self.leader_node},
            "leader_labels": dict(LEADER_LABELS),
            "env": [dict(e) for e in self.env],
            "service": dict(self.service),
            "command": list(self.command),
        }


@dataclass(frozen=True, slots=True)
class KueueSlice:
    axis: str
    size: int
    """Pods (= nodes) in one slice: the axis's group span."""
    tier: str
    topology: str
    """The node label of ``tier``."""

    def to_dict(self) -> dict[str, object]:
        return {"axis": self.axis, "size": self.size, "tier": self.tier, "topology": self.topology}


@dataclass(frozen=True, slots=True)
class KueueLaunch:
    annotations: Mapping[str, str]
    """Single-level slice annotations for the pod template: the outermost slice (it holds the others)."""
    multi_layer_annotations: Mapping[str, str]
    """Every slice layer as one ``...-constraints`` annotation (Kueue's multi-layer TAS, feature gate
    TASMultiLayerTopology; exclusive with the single-level pair): one layer per label, at most 3,
    outermost first, each size dividing the one before."""
    slices: tuple[KueueSlice, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "annotations": dict(self.annotations),
            "multi_layer_annotations": dict(self.multi_layer_annotations),
            "slices": [s.to_dict() for s in self.slices],
        }


@dataclass(frozen=True, slots=True)
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


def _largest_units(topology: Topology) -> dict[str, int]:
    """Per tier, nodes in its largest unit over the whole cluster (what a scheduler could still find);
    leaves are keyed by their spine, as everywhere."""
    out: dict[str, int] = {}
    for tier in TIER_NAMES[1:]:
        sizes: dict[object, int] = {}
        for node in topology.nodes:
            value = getattr(node, tier)
            if value is not None:
                key = (node.spine, value) if tier == "leaf" else value
                sizes[key] = sizes.get(key, 0) + 1
        out[tier] = max(sizes.values(), default=1)
    return out


def _local(classes: Sequence[AxisClasses], largest: int) -> list[AxisClasses]:
    """Local axes (tp, cp, ep, ep_shard) whose groups are runs of 2 or more consecutive nodes that
    partition the order and fit a unit: one run of consecutive nodes can hold each of them."""
    return [a for a in classes if a.axis in SLICE_AXES and a.exact and a.contiguous and 2 <= a.span <= largest]


def _segment(
    classes: Sequence[AxisClasses], bounds: Sequence[Sequence[int]], largest_units: Mapping[str, int]
) -> tuple[int | None, str | None]:
    """``--segment`` (topology/block: each segment of that many nodes inside one block): suggested when a
    local axis must cross an NVLink domain in this allocation although a block could hold a group; the
    size is the largest local group span that every smaller one divides, so one segment keeps all of
    them (tp pairs inside ep groups of 8: 8, not 2)."""
    local = _local(classes, largest_units["nvlink_domain"])
    forced = [(a, b) for a, b in zip(classes, bounds) if a in local and b[1] > 0]
    if not forced:
        return None, None
    spans = sorted({a.span for a in local})
    size = max(s for s in spans if all(s % t == 0 for t in spans if t < s))
    crossing = "; ".join(
        f"{b[1]} of {a.groups} {a.axis} groups must cross an NVLink domain (each spans {a.span} nodes)"
        for a, b in forced
    )
    axes = ", ".join(a.axis for a in local if size % a.span == 0)
    reason = (
        f"{crossing} in this allocation; with topology/block, --segment={size} asks Slurm for whole {size}-node "
        f"segments inside one block, which keeps the {axes} groups inside it."
    )
    return size, reason


def _kueue(
    classes: Sequence[AxisClasses], topology: Topology, largest_units: Mapping[str, int], nodes: int
) -> KueueLaunch:
    """Slices for the local axes whose groups are runs of consecutive pods, each at the fastest tier whose
    largest unit holds it — only tiers the topology has (some node has a value there), so the level
    exists in the admin's Kueue Topology. Kueue's webhook (pkg/controller/jobframework/tas_validation.go,
    validateSliceRequiredTopologyConstraintsAnnotation) takes 1-3 layers, each label once, sizes dividing
    outermost first: layers on one label keep the largest slice (its consecutive pods hold the smaller
    slices, which then share its unit), and nested sizes only."""
    present = [t for t in TIER_NAMES[1:] if any(getattr(n, t) is not None for n in topology.nodes)]
    slices: dict[str, KueueSlice] = {}  # one per label
    for axis in classes:
        if axis.axis not in SLICE_AXES or axis.span < 2 or not (axis.exact and axis.contiguous):
            continue
        for tier in present:
            if largest_units[tier] >= axis.span:
                label = topology.label(tier)
                if label not in slices or slices[label].size < axis.span:
                    slices[label] = KueueSlice(axis.axis, axis.span, tier, label)
                break
    layered: list[KueueSlice] = []
    for piece in sorted(slices.values(), key=lambda s: (-s.size, TIER_NAMES.index(s.tier))):
        outer = layered[-1] if layered else None
        if outer is not None and (
            outer.size % piece.size or TIER_NAMES.index(piece.tier) > TIER_NAMES.index(outer.tier)
        ):
            continue  # not nested in the layer above it: Kueue would refuse the layering
        if nodes % piece.size == 0 and len(layered) < KUEUE_MAX_LAYERS:
            layered.append(piece)
    annotations: dict[str, str] = {}
    multi: dict[str, str] = {}
    if layered:
        annotations = {SLICE_TOPOLOGY: layered[0].topology, SLICE_SIZE: str(layered[0].size)}
        multi = {SLICE_CONSTRAINTS: json.dumps([{"topology": s.topology, "size": s.size} for s in layered])}
    if "spine" in present:
        annotations[PREFERRED_TOPOLOGY] = topology.label("spine")
        if multi:
            multi[PREFERRED_TOPOLOGY] = topology.label("spine")
    return KueueLaunch(annotations, multi, tuple(layered))


def build_launch(
    order: Sequence[str],
    gpus_per_node: int,
    classes: Sequence[AxisClasses],
    bounds: Sequence[Sequence[int]],
    topology: Topology,
    command: Sequence[str] = ("train.py",),
    master_port: int = DEFAULT_MASTER_PORT,
) -> Launch:
    bad = [h for h in order if not valid_host_name(h)]
    if bad:
        raise ValueError(f"host names must be RFC 1123 host names to reach a shell line: {sample(bad)}")
    n = len(order)
    cmd = " ".join(shlex.quote(c) for c in command)
    template = (
        f"torchrun --nnodes={n} --nproc-per-node={gpus_per_node} --rdzv-backend=static "
        f"--master-addr={{master_addr}} --master-port={master_port} --node-rank={{node_rank}} {cmd}"
    )
    names = shlex.quote(" ".join(order))
    slurm_task = f"{NODE_ENV}=$SLURMD_NODENAME; " + launcher(template)
    script = (
        f"export {ORDER_ENV}={names}",
        f"srun --nodes={n} --ntasks={n} --ntasks-per-node=1 bash -c {shlex.quote(slurm_task)}",
    )
    largest_units = _largest_units(topology)
    segment, reason = _segment(classes, bounds, largest_units)
    service = rendezvous_service(RENDEZVOUS_SERVICE, LEADER_LABELS, master_port)
    env = (
        {"name": ORDER_ENV, "value": " ".join(order)},
        {"name": NODE_ENV, "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    )
    notes = (
        f"Every node finds its node rank as the position of its own name in ${ORDER_ENV} (Slurm: "
        f"$SLURMD_NODENAME; Kubernetes: spec.nodeName through the downward API); node rank 0 runs on order[0] "
        "and hosts torchrun's static rendezvous.",
        f"Kubernetes: run one leader pod with nodeSelector {HOSTNAME_LABEL}={order[0]} and labels "
        f"{dict(LEADER_LABELS)} behind the headless Service launch.kubernetes.service (the stable rendezvous "
        "address), and the other pods without pinning; all with launch.kubernetes.env and command.",
    )
    return Launch(
        slurm=SlurmLaunch(tuple(order), format_hostlist(order), segment, reason, script),
        torchrun=TorchrunLaunch(
            n,
            gpus_per_node,
            order[0],
            master_port,
            {h: i for i, h in enumerate(order)},
            template.replace("{master_addr}", shlex.quote(order[0])),
        ),
        kubernetes=KubernetesLaunch(
            order[0], env, service, ("bash", "-c", launcher(template, master=RENDEZVOUS_SERVICE))
        ),
        kueue=_kueue(classes, topology, largest_units, n),
        notes=notes,
    )


def _slice_values(entry: object, count: int, where: str) -> list[str]:
    """One level of a v1beta2 slice: ``universal`` or ``individual`` (prefix + root + suffix)."""
    if isinstance(entry, Mapping) and isinstance(entry.get("universal"), str):
        return [str(entry["universal"])] * count
    individual = entry.get("individual") if isinstance(entry, Mapping) else None
    roots = individual.get("roots") if isinstance(individual, Mapping) else None
    if not isinstance(individual, Mapping) or not isinstance(roots, list) or len(roots) != count:
        raise ValueError(f"{where}: expected universal, or individual with {count} roots (domainCount)")
    prefix, suffix = individual.get("prefix") or "", individual.get("suffix") or ""
    return [f"{prefix}{root}{suffix}" for root in roots]


def assignment_domains(assignment: Mapping[str, object]) -> tuple[list[str], list[dict[str, object]]]:
    """``(levels, domains)`` of an admitted Kueue ``topologyAssignment``: the v1beta1 form
    (``{"levels", "domains": [{"values", "count"}]}``) as it is, the v1beta2 form (``{"levels", "slices":
    [{"domainCount", "valuesPerLevel": [{"universal"} | {"individual": {"prefix", "roots", "suffix"}}],
    "podCounts": {"universal"} | {"individual"}}]}``) expanded into the same domains."""
    levels = assignment.get("levels")
    if not isinstance(levels, list):
        raise ValueError("topologyAssignment.levels: expected a list of node labels, highest level first")
    domains = assignment.get("domains")
    if isinstance(domains, list):
        return [str(level) for level in levels], list(domains)
    slices = assignment.get("slices")
    if not isinstance(slices, list):
        raise ValueError(
            'topologyAssignment: expected "domains" (Kueue v1beta1) or "slices" (v1beta2) next to "levels"'
        )
    out: list[dict[str, object]] = []
    for i, piece in enumerate(slices):
        where = f"topologyAssignment.slices[{i}]"
        count = piece.get("domainCount") if isinstance(piece, Mapping) else None
        per_level = piece.get("valuesPerLevel") if isinstance(piece, Mapping) else None
        pods = piece.get("podCounts") if isinstance(piece, Mapping) else None
        if not isinstance(count, int) or not isinstance(per_level, list) or len(per_level) != len(levels):
            raise ValueError(f"{where}: expected domainCount and valuesPerLevel (one per level)")
        columns = [_slice_values(entry, count, f"{where}.valuesPerLevel[{j}]") for j, entry in enumerate(per_level)]
        universal = pods.get("universal") if isinstance(pods, Mapping) else None
        individual = pods.get("individual") if isinstance(pods, Mapping) else None
        if isinstance(universal, int):
            counts = [universal] * count
        elif isinstance(individual, list) and len(individual) == count:
            counts = [int(c) for c in individual]
        else:
            raise ValueError(f"{where}.podCounts: expected universal, or individual with {count} counts")
        for d in range(count):
            out.append({"values": [column[d] for column in columns], "count": counts[d]})
    return [str(level) for level in levels], out


def check_topology_assignment(
    order: Sequence[str], topology: Topology, assignment: Mapping[str, object]
) -> list[Problem]:
    """Problems with an admitted Kueue ``topologyAssignment`` (v1beta1 ``domains`` or v1beta2 ``slices``,
    see ``assignment_domains``) for this order: it must name hosts (its last level is
    ``kubernetes.io/hostname``), put one pod on each host of the order and nowhere else, and agree with
    the topology on every level that is one of its tiers' labels (a stale topology fails here)."""
    levels, domains = assignment_domains(assignment)
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
