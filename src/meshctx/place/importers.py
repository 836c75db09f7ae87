"""Topologies from what clusters already describe: Slurm's topology.conf / topology.yaml, kubectl nodes.

Slurm tree (``SwitchName=... Nodes=...`` / ``Switches=...``): a node's leaf is the switch listing it,
its spine that switch's parent. Slurm block (``BlockName=... Nodes=...``, ``BlockSizes=...``): a block is
the NVLink domain (topology/block exists for NVL72-style racks); the aggregates of the next block sizes
(``BlockSizes[1] / BlockSizes[0]`` consecutive blocks, in file order) are the leaf, then the spine.
Slurm files do not carry GPU counts, so the caller gives one.

Kubernetes (``kubectl get nodes -o json``): ``nvidia.com/gpu.clique`` is the NVLink domain;
``cloud.google.com/gce-topology-subblock`` / ``-block`` are leaf / spine (values kept as labelled, so
they compare with Kueue's topologyAssignment); ``topology.k8s.aws/network-node-layer-N`` gives the
leaf (deepest layer) and spine (the one above). GPUs are ``status.allocatable["nvidia.com/gpu"]``;
nodes without GPUs are left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .hostlist import parse_hostlist
from .topology import Node, Topology

GPU_RESOURCE = "nvidia.com/gpu"
CLIQUE_LABEL = "nvidia.com/gpu.clique"
GCE_BLOCK = "cloud.google.com/gce-topology-block"
GCE_SUBBLOCK = "cloud.google.com/gce-topology-subblock"
AWS_LAYER = re.compile(r"^topology\.k8s\.aws/network-node-layer-(\d+)$")


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
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit():
            raise ValueError(f"{where}: {item!r} is not a whole number")
        sizes.append(int(text))
    return sizes


def _check_gpus(gpus_per_node: int) -> None:
    if isinstance(gpus_per_node, bool) or not isinstance(gpus_per_node, int) or gpus_per_node < 1:
        raise ValueError(f"gpus_per_node: a positive integer is required, got {gpus_per_node!r}")


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
                raise ValueError(f"topology.conf line {start}: {token!r} is not Key=Value")
            fields[key.lower()] = value
        out.append((start, fields))
    return out


def topology_from_slurm_conf(text: str, *, gpus_per_node: int, block_tier: str = "nvlink_domain") -> Topology:
    """Read a topology.conf (tree or block plugin)."""
    _check_gpus(gpus_per_node)
    lines = _conf_lines(text)
    switches: dict[str, tuple[list[str], list[str]]] = {}
    blocks: list[tuple[str, list[str]]] = []
    block_sizes: list[int] = []
    for number, fields in lines:
        if "switchname" in fields:
            name = fields["switchname"]
            nodes = parse_hostlist(fields["nodes"]) if fields.get("nodes") else []
            children = parse_hostlist(fields["switches"]) if fields.get("switches") else []
            switches[name] = (nodes, children)
        elif "blockname" in fields:
            if not fields.get("nodes"):
                raise ValueError(f"topology.conf line {number}: BlockName={fields['blockname']} has no Nodes=")
            blocks.append((fields["blockname"], parse_hostlist(fields["nodes"])))
        elif "blocksizes" in fields:
            try:
                block_sizes = [int(v) for v in fields["blocksizes"].split(",") if v]
            except ValueError:
                raise ValueError(
                    f"topology.conf line {number}: BlockSizes={fields['blocksizes']} is not a list of integers"
                ) from None
        else:
            raise ValueError(
                f"topology.conf line {number}: expected SwitchName=, BlockName= or BlockSizes=, got {sorted(fields)}"
            )
    if switches and blocks:
        raise ValueError("topology.conf: has both SwitchName (tree) and BlockName (block) lines; use one plugin's")
    if blocks:
        return _from_blocks(blocks, block_sizes, gpus_per_node, block_tier)
    if not switches:
        raise ValueError("topology.conf: no SwitchName or BlockName line")
    return _from_tree(switches, gpus_per_node)


def _from_tree(switches: Mapping[str, tuple[list[str], list[str]]], gpus_per_node: int) -> Topology:
    parent: dict[str, str] = {}
    for name, (_, children) in switches.items():
        for child in children:
            if child not in switches:
                raise ValueError(f"topology: switch {name} lists unknown child switch {child}")
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
        raise ValueError(f"block_tier: 'nvlink_domain' or 'leaf', got {block_tier!r}")
    if any(size < 1 for size in block_sizes):
        raise ValueError(f"BlockSizes={block_sizes}: every size must be a positive number of nodes")
    base = block_sizes[0] if block_sizes else None
    aggregates: list[int] = []
    for size in block_sizes[1:]:
        if base is None or size % base:
            raise ValueError(f"BlockSizes={block_sizes}: {size} is not a multiple of the base block size {base}")
        aggregates.append(size // base)
    tiers = ["nvlink_domain", "leaf", "spine"] if block_tier == "nvlink_domain" else ["leaf", "spine"]
    nodes: list[Node] = []
    seen: set[str] = set()
    for index, (name, members) in enumerate(blocks):
        values: dict[str, str | None] = {"nvlink_domain": None, "leaf": None, "spine": None}
        values[tiers[0]] = name
        for tier, span in zip(tiers[1:], aggregates):
            first = index - index % span
            last = min(first + span, len(blocks)) - 1
            values[tier] = f"{blocks[first][0]}..{blocks[last][0]}"
        for node in members:
            if node in seen:
                raise ValueError(f"topology: node {node} is in more than one block (again in {name})")
            seen.add(node)
            nodes.append(Node(node, gpus_per_node, values["nvlink_domain"], values["leaf"], values["spine"]))
    return Topology.of(nodes)


def topology_from_slurm_yaml(
    text: str, *, gpus_per_node: int, name: str | None = None, block_tier: str = "nvlink_domain"
) -> Topology:
    """Read a topology.yaml (Slurm 24.05+): the topology called ``name``, else the ``cluster_default``
    one, else the first. Needs PyYAML (imported here, not with the package)."""
    _check_gpus(gpus_per_node)
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading topology.yaml needs PyYAML: pip install pyyaml") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"topology.yaml: not YAML: {error}") from None
    if not isinstance(data, list) or not all(isinstance(t, Mapping) and "topology" in t for t in data):
        raise ValueError("topology.yaml: expected a list of topologies, each with a 'topology' name")
    chosen: Mapping[str, Any] | None = None
    if name is not None:
        chosen = next((t for t in data if str(t["topology"]) == name), None)
        if chosen is None:
            raise ValueError(f"topology.yaml: no topology {name!r}; it has {[t['topology'] for t in data]}")
    else:
        chosen = next((t for t in data if t.get("cluster_default")), data[0] if data else None)
    if chosen is None:
        raise ValueError("topology.yaml: no topology defined")
    where = f"topology.yaml topology {chosen['topology']!r}"
    if "tree" in chosen:
        switches: dict[str, tuple[list[str], list[str]]] = {}
        tree = _mapping(chosen["tree"], f"{where}: tree")
        for entry in _list(tree.get("switches"), f"{where}: tree.switches"):
            if not isinstance(entry, Mapping) or "switch" not in entry:
                raise ValueError(f"{where}: every tree.switches entry needs 'switch'")
            nodes = parse_hostlist(str(entry["nodes"])) if entry.get("nodes") else []
            children = parse_hostlist(str(entry["children"])) if entry.get("children") else []
            switches[str(entry["switch"])] = (nodes, children)
        if not switches:
            raise ValueError(f"{where}: tree has no switches")
        return _from_tree(switches, gpus_per_node)
    if "block" in chosen:
        spec = _mapping(chosen["block"], f"{where}: block")
        blocks = []
        for entry in _list(spec.get("blocks"), f"{where}: block.blocks"):
            if not isinstance(entry, Mapping) or "block" not in entry or not entry.get("nodes"):
                raise ValueError(f"{where}: every block.blocks entry needs 'block' and 'nodes'")
            blocks.append((str(entry["block"]), parse_hostlist(str(entry["nodes"]))))
        sizes = _block_sizes(spec.get("block_sizes"), f"{where}: block.block_sizes")
        return _from_blocks(blocks, sizes, gpus_per_node, block_tier)
    if chosen.get("flat"):
        raise ValueError(f"{where}: is flat (no network structure); list the nodes in a topology JSON instead")
    raise ValueError(f"{where}: has none of tree, block or flat")


def _gpus(node: Mapping[str, Any], where: str) -> int:
    status = _mapping(node.get("status"), f"{where}.status")
    for source in ("allocatable", "capacity"):
        value = _mapping(status.get(source), f"{where}.status.{source}").get(GPU_RESOURCE)
        if value is not None:
            try:
                return int(str(value))
            except ValueError:
                raise ValueError(
                    f"node {node.get('metadata', {}).get('name')}: status.{source}[{GPU_RESOURCE!r}] is {value!r}"
                ) from None
    return 0


def topology_from_kubectl(data: Mapping[str, Any]) -> Topology:
    """Read ``kubectl get nodes -o json`` (a ``List`` of ``Node``s, or one ``Node``)."""
    items = data.get("items") if isinstance(data, Mapping) else None
    if items is None and isinstance(data, Mapping) and data.get("kind") == "Node":
        items = [data]
    if not isinstance(items, list):
        raise ValueError("kubectl nodes: expected the JSON of `kubectl get nodes -o json` (an object with items)")
    nodes: list[Node] = []
    labels_used: dict[str, str] = {}
    for i, item in enumerate(items):
        where = f"kubectl nodes: items[{i}]"
        item = _mapping(item, where)
        meta = _mapping(item.get("metadata"), f"{where}.metadata")
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.metadata.name is missing")
        gpus = _gpus(item, where)
        if gpus < 1:
            continue
        labels = _mapping(meta.get("labels"), f"{where}.metadata.labels")
        odd = sorted(key for key, value in labels.items() if not isinstance(value, str))
        if odd:
            raise ValueError(f"{where}.metadata.labels: values must be strings; {', '.join(map(str, odd))} are not")
        clique = labels.get(CLIQUE_LABEL)
        leaf = spine = None
        if GCE_BLOCK in labels or GCE_SUBBLOCK in labels:
            spine = labels.get(GCE_BLOCK)
            sub = labels.get(GCE_SUBBLOCK)
            leaf = sub
            labels_used.update({"leaf": GCE_SUBBLOCK, "spine": GCE_BLOCK})
        else:
            layers = sorted(((int(m.group(1)), key) for key in labels if (m := AWS_LAYER.match(key))), reverse=True)
            if layers:
                leaf = labels[layers[0][1]]
                labels_used["leaf"] = layers[0][1]
                if len(layers) > 1:
                    spine = labels[layers[1][1]]
                    labels_used["spine"] = layers[1][1]
        if clique is not None:
            labels_used["nvlink_domain"] = CLIQUE_LABEL
        nodes.append(Node(name, gpus, clique or None, leaf or None, spine or None))
    return Topology.of(nodes, labels_used)
