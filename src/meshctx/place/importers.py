"""Topologies from what clusters already describe: Slurm's topology.conf / topology.yaml, kubectl nodes.

Slurm tree (``SwitchName=... Nodes=...`` / ``Switches=...``): a node's leaf is the switch listing it,
its spine that switch's parent. Slurm block (``BlockName=... Nodes=...``, ``BlockSizes=...``): a block is
the NVLink domain (topology/block exists for NVL72-style racks); the aggregates of the next block sizes
(``BlockSizes[1] / BlockSizes[0]`` consecutive blocks, in file order) are the leaf, then the spine.
Slurm files do not carry GPU counts, so the caller gives one. A repeated switch or block name, a switch
listing itself and a loop of switches are refused (Slurm's own parser refuses them too; silently keeping
one of two definitions would drop nodes).

Kubernetes (``kubectl get nodes -o json``), per tier the first label a node carries (``label_map``, the
CLI's ``--label-map``, puts a custom key first): NVLink domain ``nvidia.com/gpu.clique``, Topograph's
``network.topology.nvidia.com/accelerator`` or ``accelerator.topograph.run/domain``; leaf / spine from
one scheme per node: GKE ``cloud.google.com/gce-topology-subblock`` / ``-block``; Topograph
``network.topology.nvidia.com/leaf`` / ``spine`` or ``fabric.topograph.run/tier-0`` / ``tier-1``; OKE
``oci.oraclecloud.com/rdma.local_block_id`` / ``rdma.network_block_id``; AWS
``topology.k8s.aws/network-node-layer-N`` (deepest layer, the one above). Values are kept as labelled
(they compare with Kueue's topologyAssignment). GPUs are ``status.allocatable["nvidia.com/gpu"]``; a node
without that resource but with the GPU feature discovery label ``nvidia.com/gpu.count`` (GPUs handed out
by a DRA driver) counts that many, with a warning; other nodes without GPUs are left out (with a warning when
labelled ``nvidia.com/gpu.present=true``).

Every importer is bounded in total: at most ``limit`` names expanded from all hostlists of a file, or
nodes in a kubectl list (a service passes its node limit); YAML aliases are refused, not expanded; error
messages quote a short prefix of what they refuse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .hostlist import MAX_HOSTS, parse_hostlist, quoted
from .problems import sample
from .topology import TIER_NAMES, Node, Topology

GPU_RESOURCE = "nvidia.com/gpu"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"  # GPU feature discovery; present with the device plugin and with DRA
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
CLIQUE_LABEL = "nvidia.com/gpu.clique"
GCE_BLOCK = "cloud.google.com/gce-topology-block"
GCE_SUBBLOCK = "cloud.google.com/gce-topology-subblock"
TOPOGRAPH_ACCELERATOR = "network.topology.nvidia.com/accelerator"
TOPOGRAPH_LEAF = "network.topology.nvidia.com/leaf"
TOPOGRAPH_SPINE = "network.topology.nvidia.com/spine"
TOPOGRAPH_DOMAIN = "accelerator.topograph.run/domain"
TOPOGRAPH_TIER = "fabric.topograph.run/tier-{}"
OKE_LOCAL_BLOCK = "oci.oraclecloud.com/rdma.local_block_id"
OKE_NETWORK_BLOCK = "oci.oraclecloud.com/rdma.network_block_id"
AWS_LAYER = re.compile(r"^topology\.k8s\.aws/network-node-layer-(\d+)$")
#: The most GPUs one node may report (the HTTP schema's bound too).
MAX_GPUS_PER_NODE = 1024
#: Deepest JSON nesting read from a kubectl ``text`` (a node list needs about 6).
MAX_JSON_DEPTH = 64

NVLINK_LABELS: tuple[str, ...] = (CLIQUE_LABEL, TOPOGRAPH_ACCELERATOR, TOPOGRAPH_DOMAIN)
#: (leaf label, spine label) per scheme, in the order tried; AWS's numbered layers come last.
LEAF_SPINE_LABELS: tuple[tuple[str, str], ...] = (
    (GCE_SUBBLOCK, GCE_BLOCK),
    (TOPOGRAPH_LEAF, TOPOGRAPH_SPINE),
    (TOPOGRAPH_TIER.format(0), TOPOGRAPH_TIER.format(1)),
    (OKE_LOCAL_BLOCK, OKE_NETWORK_BLOCK),
)


@dataclass(frozen=True, slots=True)
class Imported:
    """An importer's topology and what the caller should hear about it (nodes without topology labels,
    GPUs counted from a label, tiers no node has)."""

    topology: Topology
    warnings: tuple[str, ...] = field(default=())


class _Budget:
    """Names a file may still expand to: every hostlist of one file counts against one limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def hosts(self, expression: str, where: str) -> list[str]:
        try:
            names = parse_hostlist(expression, limit=self.limit - self.used)
        except ValueError as error:
            if "expands to more than" not in str(error):
                raise ValueError(f"{where}: {error}") from None
            raise ValueError(
                f"{where}: the file names more than {self.limit} nodes and switches in all "
                f"(at {quoted(expression)}); the limit is the node limit (MESHCTX_MAX_PLACE_NODES on a service)"
            ) from None
        self.used += len(names)
        return names


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    """``value`` as a mapping (``None``: empty); anything else is a ``ValueError`` naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _block_sizes(value: object, where: str) -> list[int]:
    items = value.split(",") if isinstance(value, str) else _list(value, where)
    sizes = []
    for item in items:
        text = str(item).strip() if isinstance(item, (str, int)) else ""
        if isinstance(item, bool) or not text.isdigit() or len(text) > 9:
            raise ValueError(f"{where}: {quoted(str(item))} is not a whole number")
        sizes.append(int(text))
    return sizes


def _check_gpus(gpus_per_node: int) -> None:
    if isinstance(gpus_per_node, bool) or not isinstance(gpus_per_node, int) or not gpus_per_node >= 1:
        raise ValueError(f"gpus_per_node: a positive integer is required, got {gpus_per_node!r}")
    if gpus_per_node > MAX_GPUS_PER_NODE:
        raise ValueError(f"gpus_per_node: {gpus_per_node} is more than {MAX_GPUS_PER_NODE} GPUs on one node")


def load_yaml(text: str, where: str) -> Any:
    """YAML without aliases: a ``*name`` anywhere is a ``ValueError`` before anything is built (an alias of an
    alias of … expands a 500-byte file into gigabytes); parse errors quote no more than PyYAML's short snippet."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading YAML needs PyYAML: pip install pyyaml") from exc
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark is not None else "?"
                raise ValueError(
                    f"{where}: line {line}: YAML aliases (*{quoted(str(event.anchor))[1:-1]}) are refused; "
                    "write the value out in full"
                )
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        raise ValueError(f"{where}: not YAML: {str(error)[:300]}") from None


def load_json(text: str, where: str) -> Any:
    """JSON nested at most ``MAX_JSON_DEPTH`` deep (deeper is a ``ValueError``, not a ``RecursionError``)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: nested deeper than Python reads; a node list needs about 6 levels") from None
    except ValueError as error:
        raise ValueError(f"{where}: not JSON: {str(error)[:200]}") from None


def _conf_lines(text: str) -> list[tuple[int, dict[str, str]]]:
    """``(line number, {lowercased key: value})`` for each non-empty line; ``\\`` continues a line."""
    out: list[tuple[int, dict[str, str]]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if not line.strip():
            continue
        fields: dict[str, str] = {}
        for token in line.split():
            key, eq, value = token.partition("=")
            if not eq:
                raise ValueError(f"topology.conf line {start}: {quoted(token)} is not Key=Value")
            fields[key.lower()] = value
        out.append((start, fields))
    return out


def _first_definition(seen: dict[str, int], name: str, where: str, kind: str) -> None:
    """Refuse a switch or block defined twice (``seen``: name → where it was first)."""
    if name in seen:
        raise ValueError(
            f"{where}: {kind} {quoted(name)} is defined again (first at {seen[name]}); "
            f"each {kind} is one line listing all of its children"
        )


def import_slurm_conf(
    text: str, *, gpus_per_node: int, block_tier: str = "nvlink_domain", limit: int = MAX_HOSTS
) -> Imported:
    """Read a topology.conf (tree or block plugin); at most ``limit`` names from all its hostlists."""
    _check_gpus(gpus_per_node)
    budget = _Budget(limit)
    switches: dict[str, tuple[list[str], list[str]]] = {}
    blocks: list[tuple[str, list[str]]] = []
    defined: dict[str, int] = {}
    block_sizes: list[int] = []
    for number, fields in _conf_lines(text):
        where = f"topology.conf line {number}"
        if "switchname" in fields:
            name = fields["switchname"]
            _first_definition(defined, name, where, "switch")
            defined[name] = number
            nodes = budget.hosts(fields["nodes"], where) if fields.get("nodes") else []
            children = budget.hosts(fields["switches"], where) if fields.get("switches") else []
            switches[name] = (nodes, children)
        elif "blockname" in fields:
            name = fields["blockname"]
            _first_definition(defined, name, where, "block")
            defined[name] = number
            if not fields.get("nodes"):
                raise ValueError(f"{where}: BlockName={quoted(name)} has no Nodes=")
            blocks.append((name, budget.hosts(fields["nodes"], where)))
        elif "blocksizes" in fields:
            block_sizes = _block_sizes(fields["blocksizes"], f"{where}: BlockSizes")
        else:
            keys = ", ".join(quoted(key, 20) for key in sorted(fields)[:5])
            raise ValueError(f"{where}: expected SwitchName=, BlockName= or BlockSizes=, got {keys}")
    if switches and blocks:
        raise ValueError("topology.conf: has both SwitchName (tree) and BlockName (block) lines; use one plugin's")
    if blocks:
        return Imported(_from_blocks(blocks, block_sizes, gpus_per_node, block_tier))
    if not switches:
        raise ValueError("topology.conf: no SwitchName or BlockName line")
    return Imported(_from_tree(switches, gpus_per_node))


def topology_from_slurm_conf(
    text: str, *, gpus_per_node: int, block_tier: str = "nvlink_domain", limit: int = MAX_HOSTS
) -> Topology:
    """``import_slurm_conf(...).topology``."""
    return import_slurm_conf(text, gpus_per_node=gpus_per_node, block_tier=block_tier, limit=limit).topology


def _check_switch_graph(switches: Mapping[str, tuple[list[str], list[str]]]) -> None:
    """Unknown children, a switch listing itself and loops are refused (iteratively: a chain of 16k switches
    must not hit the recursion limit)."""
    for name, (_, children) in switches.items():
        for child in children:
            if child == name:
                raise ValueError(f"topology: switch {quoted(name)} lists itself as a child switch")
            if child not in switches:
                raise ValueError(f"topology: switch {quoted(name)} lists unknown child switch {quoted(child)}")
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in switches:
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            name, index = stack.pop()
            children = switches[name][1]
            if index == 0:
                state[name] = 1
                path.append(name)
            if index < len(children):
                stack.append((name, index + 1))
                child = children[index]
                if state.get(child) == 1:
                    loop = [*path[path.index(child) :], child]
                    shown = " → ".join(quoted(s, 20) for s in loop[:8]) + (" → …" if len(loop) > 8 else "")
                    raise ValueError(f"topology: switches form a loop: {shown}; a switch tree has none")
                if child not in state:
                    stack.append((child, 0))
            else:
                state[name] = 2
                path.pop()


def _from_tree(switches: Mapping[str, tuple[list[str], list[str]]], gpus_per_node: int) -> Topology:
    _check_switch_graph(switches)
    parent: dict[str, str] = {}
    for name, (_, children) in switches.items():
        for child in children:
            parent.setdefault(child, name)
    leaf_of: dict[str, str] = {}
    for name, (nodes, _) in switches.items():
        for node in nodes:
            leaf_of.setdefault(node, name)
    return Topology.of([Node(node, gpus_per_node, None, leaf, parent.get(leaf)) for node, leaf in leaf_of.items()])


def _from_blocks(
    blocks: list[tuple[str, list[str]]], block_sizes: list[int], gpus_per_node: int, block_tier: str
) -> Topology:
    if block_tier not in ("nvlink_domain", "leaf"):
        raise ValueError(f"block_tier: 'nvlink_domain' or 'leaf', got {quoted(str(block_tier))}")
    if any(size < 1 for size in block_sizes):
        raise ValueError(f"BlockSizes={block_sizes[:8]}: every size must be a positive number of nodes")
    base = block_sizes[0] if block_sizes else None
    aggregates: list[int] = []
    for size in block_sizes[1:]:
        if base is None or size % base:
            raise ValueError(f"BlockSizes={block_sizes[:8]}: {size} is not a multiple of the base block size {base}")
        aggregates.append(size // base)
    tiers = TIER_NAMES[TIER_NAMES.index(block_tier) :]
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, (name, members) in enumerate(blocks):
        values: dict[str, str | None] = dict.fromkeys(TIER_NAMES[1:])
        values[tiers[0]] = name
        for tier, span in zip(tiers[1:], aggregates):
            first = index - index % span
            last = min(first + span, len(blocks)) - 1
            values[tier] = f"{blocks[first][0]}..{blocks[last][0]}"
        for node in members:
            if node in seen:
                raise ValueError(f"topology: node {quoted(node)} is in more than one block (again in {quoted(name)})")
            seen.add(node)
            nodes.append(Node(node, gpus_per_node, values["nvlink_domain"], values["leaf"], values["spine"]))
    return Topology.of(nodes)


def _yaml_entries(spec: Mapping[str, Any], key: str, name_key: str, where: str) -> list[Mapping[str, Any]]:
    entries: list[Mapping[str, Any]] = []
    defined: dict[str, int] = {}
    for i, entry in enumerate(_list(spec.get(key), f"{where}.{key}")):
        if not isinstance(entry, Mapping) or name_key not in entry:
            raise ValueError(f"{where}: every {key} entry needs {name_key!r} (entry {i})")
        name = str(entry[name_key])
        _first_definition(defined, name, f"{where}.{key}[{i}]", name_key)
        defined[name] = i
        entries.append(entry)
    return entries


def import_slurm_yaml(
    text: str,
    *,
    gpus_per_node: int,
    name: str | None = None,
    block_tier: str = "nvlink_domain",
    limit: int = MAX_HOSTS,
) -> Imported:
    """Read a topology.yaml (Slurm 24.05+): the topology called ``name``, else the ``cluster_default``
    one, else the first; at most ``limit`` names from all its hostlists; aliases refused."""
    _check_gpus(gpus_per_node)
    data = load_yaml(text, "topology.yaml")
    if not isinstance(data, list) or not all(isinstance(t, Mapping) and "topology" in t for t in data):
        raise ValueError("topology.yaml: expected a list of topologies, each with a 'topology' name")
    chosen: Mapping[str, Any] | None = None
    if name is not None:
        chosen = next((t for t in data if str(t["topology"]) == name), None)
        if chosen is None:
            names = sample([quoted(str(t["topology"]), 30) for t in data])
            raise ValueError(f"topology.yaml: no topology {quoted(name)}; it has {names}")
    else:
        chosen = next((t for t in data if t.get("cluster_default")), data[0] if data else None)
    if chosen is None:
        raise ValueError("topology.yaml: no topology defined")
    where = f"topology.yaml topology {quoted(str(chosen['topology']))}"
    budget = _Budget(limit)
    if "tree" in chosen:
        switches: dict[str, tuple[list[str], list[str]]] = {}
        tree = _mapping(chosen["tree"], f"{where}: tree")
        for entry in _yaml_entries(tree, "switches", "switch", f"{where}: tree"):
            nodes = budget.hosts(str(entry["nodes"]), where) if entry.get("nodes") else []
            children = budget.hosts(str(entry["children"]), where) if entry.get("children") else []
            switches[str(entry["switch"])] = (nodes, children)
        if not switches:
            raise ValueError(f"{where}: tree has no switches")
        return Imported(_from_tree(switches, gpus_per_node))
    if "block" in chosen:
        spec = _mapping(chosen["block"], f"{where}: block")
        blocks = []
        for entry in _yaml_entries(spec, "blocks", "block", f"{where}: block"):
            if not entry.get("nodes"):
                raise ValueError(f"{where}: every block.blocks entry needs 'block' and 'nodes'")
            blocks.append((str(entry["block"]), budget.hosts(str(entry["nodes"]), where)))
        sizes = _block_sizes(spec.get("block_sizes"), f"{where}: block.block_sizes")
        return Imported(_from_blocks(blocks, sizes, gpus_per_node, block_tier))
    if chosen.get("flat"):
        raise ValueError(f"{where}: is flat (no network structure); list the nodes in a topology JSON instead")
    raise ValueError(f"{where}: has none of tree, block or flat")


def topology_from_slurm_yaml(
    text: str,
    *,
    gpus_per_node: int,
    name: str | None = None,
    block_tier: str = "nvlink_domain",
    limit: int = MAX_HOSTS,
) -> Topology:
    """``import_slurm_yaml(...).topology``."""
    return import_slurm_yaml(text, gpus_per_node=gpus_per_node, name=name, block_tier=block_tier, limit=limit).topology


def _count(value: object, where: str) -> int:
    """A GPU count as Kubernetes writes it (``"8"`` or ``8``), between 0 and ``MAX_GPUS_PER_NODE``."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit() or len(text) > 6 or int(text) > MAX_GPUS_PER_NODE:
        raise ValueError(
            f"{where} is {quoted(str(value))}: a whole number of GPUs up to {MAX_GPUS_PER_NODE} is required"
        )
    return int(text)


def _gpus(node: Mapping[str, Any], labels: Mapping[str, str], where: str) -> tuple[int, bool]:
    """(GPUs, whether they came from the ``nvidia.com/gpu.count`` label rather than the resource)."""
    status = _mapping(node.get("status"), f"{where}.status")
    for source in ("allocatable", "capacity"):
        value = _mapping(status.get(source), f"{where}.status.{source}").get(GPU_RESOURCE)
        if value is not None:
            return _count(value, f"{where}.status.{source}[{GPU_RESOURCE!r}]"), False
    if GPU_COUNT_LABEL in labels:
        return _count(labels[GPU_COUNT_LABEL], f"{where}.metadata.labels[{GPU_COUNT_LABEL!r}]"), True
    return 0, False


def _check_label_map(label_map: Mapping[str, str] | None) -> dict[str, str]:
    custom = dict(label_map or {})
    for tier, key in custom.items():
        if tier not in TIER_NAMES[1:]:
            raise ValueError(f"label_map: {quoted(str(tier))} is not a tier; use nvlink_domain, leaf or spine")
        if not isinstance(key, str) or not 0 < len(key) <= 317:
            raise ValueError(f"label_map.{tier}: a node label key is required, got {quoted(str(key))}")
    return custom


def _tier_labels(labels: Mapping[str, str], custom: Mapping[str, str]) -> dict[str, str]:
    """Tier → the label key this node's value comes from."""
    keys: dict[str, str] = {}
    nvlink = custom.get("nvlink_domain")
    for key in (nvlink,) if nvlink else NVLINK_LABELS:
        if labels.get(key):
            keys["nvlink_domain"] = key
            break
    if "leaf" in custom or "spine" in custom:
        schemes: list[tuple[str | None, str | None]] = [(custom.get("leaf"), custom.get("spine"))]
    else:
        schemes = list(LEAF_SPINE_LABELS)
        layers = sorted(((int(m.group(1)), key) for key in labels if (m := AWS_LAYER.match(key))), reverse=True)
        if layers:
            schemes.append((layers[0][1], layers[1][1] if len(layers) > 1 else None))
    for leaf, spine in schemes:
        if (leaf and labels.get(leaf)) or (spine and labels.get(spine)):
            if leaf and labels.get(leaf):
                keys["leaf"] = leaf
            if spine and labels.get(spine):
                keys["spine"] = spine
            break
    return keys


def import_kubectl(
    data: Mapping[str, Any], *, label_map: Mapping[str, str] | None = None, limit: int = MAX_HOSTS
) -> Imported:
    """Read ``kubectl get nodes -o json`` (a ``List`` of ``Node``s, or one ``Node``); at most ``limit`` items.
    ``label_map`` (tier → label key) takes a custom key for a tier instead of the known ones."""
    custom = _check_label_map(label_map)
    items = data.get("items") if isinstance(data, Mapping) else None
    if items is None and isinstance(data, Mapping) and data.get("kind") == "Node":
        items = [data]
    if not isinstance(items, list):
        raise ValueError("kubectl nodes: expected the JSON of `kubectl get nodes -o json` (an object with items)")
    if len(items) > limit:
        raise ValueError(
            f"kubectl nodes: {len(items)} items exceed the {limit} nodes this reads (MESHCTX_MAX_PLACE_NODES on a "
            "service); select the GPU nodes (kubectl get nodes -l nvidia.com/gpu.present=true -o json)"
        )
    nodes: list[Node] = []
    labels_used: dict[str, str] = {}
    unlabelled: list[str] = []
    by_label: list[str] = []
    uncounted: list[str] = []
    for i, item in enumerate(items):
        where = f"kubectl nodes: items[{i}]"
        item = _mapping(item, where)
        meta = _mapping(item.get("metadata"), f"{where}.metadata")
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.metadata.name is missing")
        labels = _mapping(meta.get("labels"), f"{where}.metadata.labels")
        odd = sorted(str(key)[:60] for key, value in labels.items() if not isinstance(value, str))
        if odd:
            raise ValueError(f"{where}.metadata.labels: values must be strings; {sample(odd, 3)} are not")
        gpus, counted_by_label = _gpus(item, labels, where)
        if gpus < 1:
            if labels.get(GPU_PRESENT_LABEL) == "true":
                uncounted.append(name[:60])
            continue
        if counted_by_label:
            by_label.append(name[:60])
        keys = _tier_labels(labels, custom)
        if not keys:
            unlabelled.append(name[:60])
        labels_used.update(keys)
        values = {tier: labels[key] for tier, key in keys.items()}
        nodes.append(Node(name, gpus, values.get("nvlink_domain"), values.get("leaf"), values.get("spine")))
    warnings: list[str] = []
    if by_label:
        warnings.append(
            f"{len(by_label)} node(s) expose no {GPU_RESOURCE} resource (GPUs handed out by a DRA driver?); their "
            f"GPUs are counted from the {GPU_COUNT_LABEL} label: {sample(by_label)}"
        )
    if uncounted:
        warnings.append(
            f"{len(uncounted)} node(s) labelled {GPU_PRESENT_LABEL}=true expose neither the {GPU_RESOURCE} resource "
            f"nor a {GPU_COUNT_LABEL} label, so they are left out: {sample(uncounted)}"
        )
    if unlabelled:
        known = ", ".join([*NVLINK_LABELS, *(k for pair in LEAF_SPINE_LABELS for k in pair), "topology.k8s.aws/…"])
        where_from = (
            f"the label_map keys {sorted(custom.values())}" if custom else f"any known topology label ({known})"
        )
        warnings.append(
            f"{len(unlabelled)} of {len(nodes)} GPU node(s) carry none of {where_from}: every tier of theirs is a "
            f"unit of its own (crossings counted as if nothing is shared); name your cluster's label keys with "
            f"--label-map / label_map (tier=key): {sample(unlabelled)}"
        )
    elif nodes:
        for tier in TIER_NAMES[1:]:
            if tier not in labels_used and tier in custom:
                warnings.append(f"no node carries label_map.{tier} = {quoted(custom[tier], 80)}")
    return Imported(Topology.of(nodes, labels_used), tuple(warnings))


def topology_from_kubectl(
    data: Mapping[str, Any], *, label_map: Mapping[str, str] | None = None, limit: int = MAX_HOSTS
) -> Topology:
    """``import_kubectl(...).topology``."""
    return import_kubectl(data, label_map=label_map, limit=limit).topology
