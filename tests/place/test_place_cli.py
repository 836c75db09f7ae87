"""``meshctx place`` offline: topology files in every format, allocations, the table, the JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshctx import ParallelismSizes, plan_mesh
from meshctx.cli import main
from meshctx.place import Node, Topology

# 8 nodes of 4 GPUs; odd and even hosts sit in different NVLink domains, so hostname order (natural or
# lexicographic) puts each tp=8 pair of nodes across two domains.
NODES = [Node(f"node{i}", 4, f"nvl{i % 2}", f"leaf{i % 2}", "spine0") for i in range(1, 9)]
TOPOLOGY = Topology.of(NODES)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def topo_json(tmp_path: Path) -> Path:
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(TOPOLOGY.to_dict()))
    return path


def domains_of_tp_groups(order: list[str], gpus: int, world: int) -> list[set[str]]:
    """Each tp group's NVLink domains, recomputed from the plan's own groups."""
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=world)
    by_name = TOPOLOGY.by_name()
    return [{str(by_name[order[r // gpus]].nvlink_domain) for r in group} for group in plan.groups("tp")]


def test_json_keeps_every_tp_group_in_one_nvlink_domain(topo_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["place", "--topology", str(topo_json), "--tp", "8", "--json"], capsys)
    assert status == 0, err
    body = json.loads(out)
    assert sorted(body["order"]) == sorted(n.name for n in NODES)
    assert body["gpus_per_node"] == 4
    keys = {"order", "gpus_per_node", "axes", "baselines", "launch", "optimal", "gap", "search", "warnings"}
    assert set(body) == keys
    tp = body["axes"]["tp"]
    assert tp["groups"] == 4 and tp["crossing"] == {"node": 4, "nvlink_domain": 0, "leaf": 0, "spine": 0}
    for baseline in ("lexicographic", "natural"):
        assert body["baselines"][baseline]["tp"]["crossing"]["nvlink_domain"] == 4
    assert all(len(domains) == 1 for domains in domains_of_tp_groups(body["order"], 4, 32))
    assert body["launch"]["slurm"]["hostfile"] == body["order"]


def test_text_shows_the_table_and_the_launch_lines(topo_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["place", "--topology", str(topo_json), "--world-size", "32", "--tp", "8"], capsys)
    assert status == 0
    assert "placed 8 nodes × 4 GPUs" in out
    header = next(line for line in out.splitlines() if line.strip().startswith("axis"))
    assert header.split() == ["axis", "groups", "lexicographic", "natural", "topology", "meshctx", "lower", "bound"]
    tp_row = next(line for line in out.splitlines() if line.strip().startswith("tp "))
    assert tp_row.split()[:2] == ["tp", "4"]
    assert "4 / 4 / 4 / 0" in tp_row and "4 / 0 / 0 / 0" in tp_row  # lexicographic leaves; meshctx none
    assert "srun --nodes=8 --ntasks=8 --ntasks-per-node=1 bash -c" in out and "--distribution" not in out
    assert "export MESHCTX_ORDER=" in out and "--rdzv-backend=static" in out
    assert "search: default, " in out and "optimal (" in out
    status, out, _ = run(
        ["place", "--topology", str(topo_json), "--tp", "8", "--search", "exhaustive", "--json"], capsys
    )
    assert status == 0 and json.loads(out)["search"]["mode"] == "exhaustive"


def test_yaml_topology_gives_the_same_placement(
    topo_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    as_yaml = tmp_path / "topology.yaml"
    as_yaml.write_text(yaml.safe_dump(TOPOLOGY.to_dict()))
    _, from_json, _ = run(["place", "--topology", str(topo_json), "--tp", "8", "--json"], capsys)
    status, from_yaml, _ = run(["place", "--topology", str(as_yaml), "--tp", "8", "--json"], capsys)
    assert status == 0 and json.loads(from_yaml) == json.loads(from_json)


SLURM_CONF = "SwitchName=s0 Nodes=gpu[1-2]\nSwitchName=s1 Nodes=gpu[3-4]\nSwitchName=top Switches=s[0-1]\n"
SLURM_YAML = """
- topology: main
  cluster_default: true
  tree:
    switches:
      - switch: s0
        nodes: gpu[1-2]
      - switch: s1
        nodes: gpu[3-4]
      - switch: top
        children: s[0-1]
"""


@pytest.mark.parametrize(("name", "text"), [("topology.conf", SLURM_CONF), ("topology.yaml", SLURM_YAML)])
def test_slurm_topology_files_need_gpus_per_node(
    name: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    status, _, err = run(["place", "--slurm-topology", str(path), "--tp", "2", "--cp", "2"], capsys)
    assert status == 2 and "--gpus-per-node" in err
    argv = ["place", "--slurm-topology", str(path), "--gpus-per-node", "2", "--tp", "2", "--cp", "2", "--json"]
    status, out, err = run(argv, capsys)
    assert status == 0, err
    body = json.loads(out)
    # cp pairs nodes: each pair must share a leaf switch (s0: gpu1-2, s1: gpu3-4)
    leaf = {"gpu1": "s0", "gpu2": "s0", "gpu3": "s1", "gpu4": "s1"}
    order = body["order"]
    assert leaf[order[0]] == leaf[order[1]] and leaf[order[2]] == leaf[order[3]]
    assert body["axes"]["cp"]["crossing"]["leaf"] == 0


def test_kubectl_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items: list[dict[str, Any]] = [
        {
            "metadata": {"name": f"gke-x-{i}", "labels": {"nvidia.com/gpu.clique": f"clique{i // 2}"}},
            "status": {"allocatable": {"nvidia.com/gpu": "4"}},
        }
        for i in range(4)
    ]
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps({"kind": "List", "items": items}))
    status, out, err = run(["place", "--kubectl-nodes", str(path), "--tp", "8", "--json"], capsys)
    assert status == 0, err
    body = json.loads(out)
    assert body["axes"]["tp"]["crossing"]["nvlink_domain"] == 0 and body["gpus_per_node"] == 4


def test_allocation_by_hostlist_and_by_file(
    topo_json: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        ["place", "--topology", str(topo_json), "--nodes", "node[1-4]", "--tp", "8", "--json"], capsys
    )
    assert status == 0, err
    assert sorted(json.loads(out)["order"]) == ["node1", "node2", "node3", "node4"]
    hosts = tmp_path / "hosts"
    hosts.write_text("# from scontrol show hostnames\nnode5\nnode[6-7]\n\nnode8\n")
    status, out, err = run(
        ["place", "--topology", str(topo_json), "--nodes", f"@{hosts}", "--tp", "8", "--json"], capsys
    )
    assert status == 0, err
    assert sorted(json.loads(out)["order"]) == ["node5", "node6", "node7", "node8"]


def test_placement_problems_exit_1_with_every_code(topo_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["place", "--topology", str(topo_json), "--nodes", "node[1-3],ghost[1-2]", "--world-size", "32", "--json"]
    status, out, _ = run(argv, capsys)
    assert status == 1
    body = json.loads(out)
    assert body["valid"] is False
    codes = {p["code"] for p in body["problems"]}
    assert codes == {"unknown_node", "allocation_size_mismatch"}
    unknown = next(p for p in body["problems"] if p["code"] == "unknown_node")
    assert "ghost1" in unknown["message"] and unknown["fields"] == ["nodes"]
    status, out, _ = run(["place", "--topology", str(topo_json), "--nodes", "node[1-3]", "--world-size", "32"], capsys)
    assert status == 1 and "allocation_size_mismatch" in out and "hint:" in out


def test_invalid_sizes_exit_1_with_the_validation_report(topo_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["place", "--topology", str(topo_json), "--tp", "3", "--json"], capsys)
    assert status == 1
    body = json.loads(out)
    assert body["valid"] is False and body["problems"][0]["code"] == "world_size_not_divisible"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--nodes", "node[1-"], "--nodes: hostlist"),
        (["--nodes", "@/nonexistent/hosts"], "--nodes /nonexistent/hosts: cannot read"),
        (["--nnodes", "2:8", "--nproc-per-node", "4"], "elastic range"),
    ],
)
def test_usage_errors_exit_2(
    extra: list[str], needle: str, topo_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(["place", "--topology", str(topo_json), "--tp", "8", *extra], capsys)
    assert status == 2 and needle in err, err


def test_malformed_topology_names_the_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"nodes": [{"name": "a", "gpus": 4}, {"name": "b", "gpus": 0}]}))
    status, _, err = run(["place", "--topology", str(path), "--world-size", "8"], capsys)
    assert status == 2 and "nodes[1].gpus" in err and "got 0" in err


def test_a_topology_source_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["place", "--world-size", "8"])
    assert exit_info.value.code == 2
    assert "--topology" in capsys.readouterr().err


def test_label_map_reads_custom_keys_and_unlabelled_nodes_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items: list[dict[str, Any]] = [
        {
            "metadata": {"name": f"k{i}", "labels": {"example.com/nvl": f"nvl{i % 2}"}},
            "status": {"allocatable": {"nvidia.com/gpu": "4"}},
        }
        for i in range(4)
    ]
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps({"items": items}))
    argv = ["place", "--kubectl-nodes", str(path), "--tp", "8", "--json"]
    status, out, err = run(argv, capsys)
    assert status == 0 and "warning: 4 of 4 GPU node(s) carry none of" in err, err
    assert json.loads(out)["axes"]["tp"]["crossing"]["nvlink_domain"] == 2  # nothing known: every node its own
    status, out, err = run([*argv, "--label-map", "nvlink_domain=example.com/nvl"], capsys)
    assert status == 0 and err == "", err
    assert json.loads(out)["axes"]["tp"]["crossing"]["nvlink_domain"] == 0
    status, _, err = run([*argv, "--label-map", "nvlink_domain"], capsys)
    assert status == 2 and "is not TIER=KEY" in err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nodes:\n  - &n {name: a, gpus: 4}\n  - *n\n", "YAML aliases (*n) are refused"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
    ],
)
def test_hostile_topology_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    status, _, err = run(["place", "--topology", str(path), "--world-size", "8"], capsys)
    assert status == 2 and needle in err, err
