"""Topologies from Slurm topology.conf / topology.yaml and from kubectl node JSON."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from meshctx.integrations import safe_yaml
from meshctx.place import (
    Node,
    Topology,
    parse_hostlist,
    topology_from_kubectl,
    topology_from_slurm_conf,
    topology_from_slurm_yaml,
)
from meshctx.place.importers import import_kubectl, load_json

TREE_CONF = """
# leaf switches
SwitchName=s0 Nodes=tux[0-3] LinkSpeed=900
switchname=s1 nodes=tux[4-7]
SwitchName=s2 Nodes=tux[8-9]
SwitchName=core0 Switches=s[0-1]
SwitchName=core1 \\
    Switches=s2
"""

BLOCK_CONF = """
BlockName=b1 Nodes=gb[001-018]
BlockName=b2 Nodes=gb[019-036]
BlockName=b3 Nodes=gb[037-054]
BlockName=b4 Nodes=gb[055-072]
BlockSizes=18,36,72
"""


def test_tree_conf_gives_leaf_and_spine_switches() -> None:
    topology = topology_from_slurm_conf(TREE_CONF, gpus_per_node=8)
    nodes = topology.by_name()
    assert len(nodes) == 10
    assert nodes["tux2"] == Node("tux2", 8, None, "s0", "core0")
    assert nodes["tux5"].leaf == "s1" and nodes["tux5"].spine == "core0"
    assert nodes["tux9"].leaf == "s2" and nodes["tux9"].spine == "core1"


def test_block_conf_blocks_are_nvlink_domains_and_aggregates_are_leaf_and_spine() -> None:
    topology = topology_from_slurm_conf(BLOCK_CONF, gpus_per_node=4)
    nodes = topology.by_name()
    assert nodes["gb001"].nvlink_domain == "b1" and nodes["gb019"].nvlink_domain == "b2"
    assert nodes["gb001"].leaf == nodes["gb036"].leaf == "b1..b2"
    assert nodes["gb037"].leaf == "b3..b4"
    assert nodes["gb001"].spine == nodes["gb072"].spine == "b1..b4"
    assert {n.gpus for n in topology.nodes} == {4}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("SwitchName=s0 Nodes=a[1-2]\nBlockName=b0 Nodes=a[3-4]", "both SwitchName"),
        ("SwitchName=top Switches=missing", "unknown child switch"),
        ("Frobnicate=yes", "expected SwitchName"),
        ("SwitchName=s0 Nodes", "not Key=Value"),
        ("BlockName=b1 Nodes=a[1-4]\nBlockSizes=4,6", "not a multiple"),
        ("", "no SwitchName or BlockName"),
    ],
)
def test_bad_conf_names_the_problem(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        topology_from_slurm_conf(text, gpus_per_node=8)


def test_gpu_count_must_be_given_and_positive() -> None:
    with pytest.raises(ValueError, match="gpus_per_node"):
        topology_from_slurm_conf(TREE_CONF, gpus_per_node=0)


TOPOLOGY_YAML = """
- topology: fabric
  tree:
    switches:
      - switch: sw_root
        children: s[1-2]
      - switch: s1
        nodes: node[01-04]
      - switch: s2
        nodes: node[05-08]
- topology: racks
  cluster_default: true
  block:
    block_sizes: [4, 8]
    blocks:
      - block: r1
        nodes: node[01-04]
      - block: r2
        nodes: node[05-08]
"""


def test_topology_yaml_picks_the_cluster_default_or_the_named_topology() -> None:
    racks = topology_from_slurm_yaml(TOPOLOGY_YAML, gpus_per_node=4)
    assert racks.by_name()["node05"].nvlink_domain == "r2"
    assert racks.by_name()["node05"].leaf == "r1..r2"
    fabric = topology_from_slurm_yaml(TOPOLOGY_YAML, gpus_per_node=4, name="fabric")
    assert fabric.by_name()["node05"] == Node("node05", 4, None, "s2", "sw_root")
    with pytest.raises(ValueError, match="no topology 'nope'"):
        topology_from_slurm_yaml(TOPOLOGY_YAML, gpus_per_node=4, name="nope")


def _k8s_node(name: str, labels: dict[str, str], gpus: str | None) -> dict[str, object]:
    status: dict[str, object] = {"allocatable": {"cpu": "96"} | ({"nvidia.com/gpu": gpus} if gpus else {})}
    return {"kind": "Node", "metadata": {"name": name, "labels": labels}, "status": status}


def test_kubectl_labels_map_to_tiers_and_cpu_nodes_are_left_out() -> None:
    data = {
        "kind": "List",
        "items": [
            _k8s_node(
                "gke-a4x-1",
                {
                    "nvidia.com/gpu.clique": "uuid-1.7",
                    "cloud.google.com/gce-topology-block": "blk-a",
                    "cloud.google.com/gce-topology-subblock": "sb-3",
                    "cloud.google.com/gce-topology-host": "h-99",
                },
                "4",
            ),
            _k8s_node(
                "ip-10-0-0-1",
                {
                    "topology.k8s.aws/network-node-layer-1": "nn-top",
                    "topology.k8s.aws/network-node-layer-2": "nn-mid",
                    "topology.k8s.aws/network-node-layer-3": "nn-leaf",
                },
                "8",
            ),
            _k8s_node("system-pool-1", {}, None),
        ],
    }
    topology = topology_from_kubectl(json.loads(json.dumps(data)))
    nodes = topology.by_name()
    assert set(nodes) == {"gke-a4x-1", "ip-10-0-0-1"}
    assert nodes["gke-a4x-1"] == Node("gke-a4x-1", 4, "uuid-1.7", "sb-3", "blk-a")
    assert nodes["ip-10-0-0-1"] == Node("ip-10-0-0-1", 8, None, "nn-leaf", "nn-mid")
    assert topology.label("nvlink_domain") == "nvidia.com/gpu.clique"
    assert topology.label("leaf") in ("cloud.google.com/gce-topology-subblock", "topology.k8s.aws/network-node-layer-3")


def test_kubectl_rejects_something_else() -> None:
    with pytest.raises(ValueError, match="kubectl get nodes"):
        topology_from_kubectl({"apiVersion": "v1"})


def test_topology_json_round_trips_and_reports_every_bad_entry() -> None:
    topology = Topology.of([Node("a", 8, "d0", None, "s"), Node("b", 8)], {"leaf": "example.com/leaf"})
    assert Topology.from_dict(json.loads(json.dumps(topology.to_dict()))) == topology
    with pytest.raises(ValueError) as info:
        Topology.from_dict({"nodes": [{"name": "a", "gpus": 0}, {"gpus": 8}, {"name": "a", "gpus": 8, "leaf": 3}]})
    message = str(info.value)
    assert "nodes[0].gpus" in message and "nodes[1].name" in message and "nodes[2].leaf" in message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("\U00015094Z\u009d", "not YAML"),
        ("a: [", "not YAML"),
        ("- topology: x\n  tree: 5", "tree: expected a mapping, got int"),
        ("- topology: x\n  tree:\n    switches: 5", "tree.switches: expected a list"),
        ("- topology: x\n  tree:\n    switches: [5]", "needs 'switch'"),
        ("- topology: x\n  block: {block_sizes: [x], blocks: [{block: b, nodes: n1}]}", "'x' is not a whole number"),
        ("- topology: x\n  block: {block_sizes: [0], blocks: [{block: b, nodes: n1}]}", "positive"),
    ],
)
def test_malformed_topology_yaml_is_a_value_error_naming_the_part(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        topology_from_slurm_yaml(text, gpus_per_node=4)


def test_block_sizes_of_zero_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        topology_from_slurm_conf("BlockName=b Nodes=n1\nBlockSizes=1,0", gpus_per_node=4)


GPU4 = {"allocatable": {"nvidia.com/gpu": "4"}}


@pytest.mark.parametrize(
    ("items", "needle"),
    [
        ([5], r"items\[0\]: expected a mapping"),
        ([{"metadata": 5}], r"items\[0\].metadata: expected a mapping"),
        ([{"metadata": {"name": "a", "labels": 5}, "status": GPU4}], "labels: expected a mapping"),
        ([{"metadata": {"name": "a"}, "status": 5}], "status: expected a mapping"),
        ([{"metadata": {"name": "a"}, "status": {"allocatable": 5}}], "allocatable: expected a mapping"),
        ([{"metadata": {"name": "a", "labels": {"nvidia.com/gpu.clique": 5}}, "status": GPU4}], "must be strings"),
    ],
)
def test_malformed_kubectl_nodes_are_a_value_error_naming_the_part(items: list[object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        topology_from_kubectl({"items": items})


# -- refusals: repeats, loops, self-reference, totals (issue 24, issue 23) ---------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("SwitchName=s0 Nodes=a[1-2]\nSwitchName=s0 Nodes=a[3-4]", "switch 's0' is defined again (first at 1)"),
        ("BlockName=b0 Nodes=a[1-2]\nBlockName=b0 Nodes=a[3-4]", "block 'b0' is defined again"),
        ("SwitchName=s0 Nodes=a[1-2]\nSwitchName=top Switches=top,s0", "switch 'top' lists itself"),
        (
            "SwitchName=s0 Nodes=a[1-2]\nSwitchName=x Switches=s0,y\nSwitchName=y Switches=z\nSwitchName=z Switches=x",
            "switches form a loop: 'x' → 'y' → 'z' → 'x'",
        ),
    ],
)
def test_repeats_loops_and_self_reference_are_refused(text: str, needle: str) -> None:
    """Today's main kept the first of two definitions (dropping a[3-4]) and took a loop for a tree."""
    with pytest.raises(ValueError, match=re.escape(needle)):
        topology_from_slurm_conf(text, gpus_per_node=8)


def test_a_long_chain_of_switches_is_checked_without_recursion() -> None:
    chain = "".join(f"SwitchName=s{i} Switches=s{i + 1}\n" for i in range(5000)) + "SwitchName=s5000 Nodes=n1\n"
    assert topology_from_slurm_conf(chain, gpus_per_node=8).by_name()["n1"].spine == "s4999"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "- topology: t\n  tree:\n    switches:\n"
            "      - {switch: s, nodes: 'n[1-2]'}\n      - {switch: s, nodes: n3}\n",
            "switch 's' is defined again",
        ),
        (
            "- topology: t\n  block:\n    blocks:\n"
            "      - {block: b, nodes: 'n[1-2]'}\n      - {block: b, nodes: n3}\n",
            "block 'b' is defined again",
        ),
        ("- topology: t\n  tree:\n    switches:\n      - {switch: s, children: s}\n", "lists itself"),
        ("- topology: &t t\n  flat: true\n- topology: *t\n", "YAML aliases (*t) are refused"),
    ],
)
def test_topology_yaml_refuses_repeats_self_reference_and_aliases(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        topology_from_slurm_yaml(text, gpus_per_node=4)


def test_every_hostlist_of_a_file_counts_against_one_limit() -> None:
    """Each line is within the limit; together they are not (each range was bounded, their total was not)."""
    text = "SwitchName=s0 Nodes=a[1-6]\nSwitchName=s1 Nodes=b[1-6]\n"
    assert len(topology_from_slurm_conf(text, gpus_per_node=8, limit=12).nodes) == 12
    with pytest.raises(ValueError, match="more than 11 nodes and switches in all"):
        topology_from_slurm_conf(text, gpus_per_node=8, limit=11)
    with pytest.raises(ValueError, match="more than 3 names"):
        parse_hostlist("n[1-2],m[1-2]", limit=3)


def test_refusals_quote_a_short_prefix_only() -> None:
    huge = "n[" + ",".join(["0-16383"] * 400) + "]"
    with pytest.raises(ValueError) as info:
        parse_hostlist(huge, limit=16384)
    assert len(str(info.value)) < 300 and "(3202 characters)" in str(info.value)
    with pytest.raises(ValueError) as info:
        topology_from_slurm_yaml("- topology: t\n", gpus_per_node=4, name="x" * 100_000)
    assert len(str(info.value)) < 300


# -- kubectl: Topograph, OKE, custom keys, warnings, DRA -------------------------------------------------------


def test_topograph_and_oke_labels_give_the_tiers() -> None:
    data = {
        "items": [
            _k8s_node(
                "tg-old",
                {
                    "network.topology.nvidia.com/accelerator": "nvl1",
                    "network.topology.nvidia.com/leaf": "s1",
                    "network.topology.nvidia.com/spine": "s2",
                    "network.topology.nvidia.com/core": "s3",
                },
                "4",
            ),
            _k8s_node(
                "tg-new",
                {
                    "accelerator.topograph.run/domain": "dom7",
                    "fabric.topograph.run/tier-0": "t0-a",
                    "fabric.topograph.run/tier-1": "t1-a",
                    "fabric.topograph.run/tier-2": "t2-a",
                },
                "4",
            ),
            _k8s_node(
                "oke-1",
                {
                    "oci.oraclecloud.com/rdma.local_block_id": "lb-1",
                    "oci.oraclecloud.com/rdma.network_block_id": "nb-1",
                    "oci.oraclecloud.com/rdma.hpc_island_id": "island-1",
                },
                "8",
            ),
        ]
    }
    imported = import_kubectl(data)
    nodes = imported.topology.by_name()
    assert nodes["tg-old"] == Node("tg-old", 4, "nvl1", "s1", "s2")
    assert nodes["tg-new"] == Node("tg-new", 4, "dom7", "t0-a", "t1-a")
    assert nodes["oke-1"] == Node("oke-1", 8, None, "lb-1", "nb-1")
    assert imported.warnings == ()


def test_custom_label_keys_and_a_warning_for_nodes_without_topology_labels() -> None:
    data = {
        "items": [
            _k8s_node("a", {"example.com/rack": "r1", "example.com/row": "w1"}, "8"),
            _k8s_node("b", {"example.com/rack": "r2", "example.com/row": "w1"}, "8"),
        ]
    }
    plain = import_kubectl(data)
    assert all(n.leaf is None and n.spine is None for n in plain.topology.nodes)
    assert len(plain.warnings) == 1 and "2 of 2 GPU node(s) carry none of" in plain.warnings[0]
    assert "--label-map" in plain.warnings[0] and "a, b" in plain.warnings[0]
    mapped = import_kubectl(data, label_map={"leaf": "example.com/rack", "spine": "example.com/row"})
    assert mapped.topology.by_name()["b"] == Node("b", 8, None, "r2", "w1")
    assert mapped.topology.label("leaf") == "example.com/rack"
    assert mapped.warnings == ()
    with pytest.raises(ValueError, match="'rack' is not a tier"):
        import_kubectl(data, label_map={"rack": "example.com/rack"})


def test_dra_gpu_nodes_are_counted_from_the_label_with_a_warning() -> None:
    dra = _k8s_node("dra-1", {"nvidia.com/gpu.count": "4", "nvidia.com/gpu.clique": "c.1"}, None)
    uncounted = _k8s_node("dra-2", {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.clique": "c.1"}, None)
    imported = import_kubectl({"items": [dra, uncounted, _k8s_node("cpu-1", {}, None)]})
    assert imported.topology.nodes == (Node("dra-1", 4, "c.1"),)
    assert len(imported.warnings) == 2 and "nvidia.com/gpu.count" in imported.warnings[0]
    assert "dra-1" in imported.warnings[0]
    assert "left out: dra-2" in imported.warnings[1] and "cpu-1" not in imported.warnings[1]


@pytest.mark.parametrize("count", [2**64 + 1, str(2**64 + 1), "1025", -1, "4.5", True])
def test_gpu_counts_out_of_range_are_refused(count: object) -> None:
    with pytest.raises(ValueError, match="a whole number of GPUs up to 1024"):
        import_kubectl({"items": [{"metadata": {"name": "a"}, "status": {"allocatable": {"nvidia.com/gpu": count}}}]})


def test_kubectl_items_count_against_the_limit() -> None:
    items = [_k8s_node(f"n{i}", {}, "8") for i in range(5)]
    assert len(import_kubectl({"items": items}, limit=5).topology.nodes) == 5
    with pytest.raises(ValueError, match="5 items exceed the 4 nodes"):
        import_kubectl({"items": items}, limit=4)


def test_deep_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        load_json("[" * 100_000 + "]" * 100_000, "kubectl nodes")


@pytest.mark.parametrize(("doc", "kind"), [("a: !!int [1, 2]\n", "sequence"), ("a: !!int {b: 1}\n", "mapping")])
def test_an_int_tag_on_a_collection_is_refused_with_its_line(doc: str, kind: str) -> None:
    """It was read as the repr of the node tree (``'<an integer of 104 digits>'``); now a YAML error names it."""
    with pytest.raises(
        yaml.YAMLError, match=rf"expected an integer, found a {kind} tagged !!int(.|\n)*line 1, column 4"
    ):
        safe_yaml.load(doc)
