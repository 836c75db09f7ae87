"""The launch section: what Slurm, torchrun, Kubernetes and Kueue need to impose the order."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest

from meshctx import ParallelismSizes, plan_mesh
from meshctx.place import Node, PlacementError, Topology, check_topology_assignment, parse_hostlist, place
from meshctx.place.examples import nvl72
from meshctx.place.scheduler_orders import build_launch, valid_host_name
from meshctx.plan import TopologyError
from meshctx.plan.problems import Code


def _rack_cluster() -> tuple[Topology, list[str]]:
    # Two racks of 4 nodes; names sort against the racks (c10d's hostname order mixes them).
    names = ["zz-1", "aa-2", "mm-3", "bb-4", "yy-5", "cc-6", "nn-7", "dd-8"]
    nodes = [Node(n, 4, f"rack{i // 4}", "leaf0", "spine0") for i, n in enumerate(names)]
    return Topology.of(nodes, {"nvlink_domain": "example.com/rack"}), names


def _placement():  # type: ignore[no-untyped-def]
    topology, names = _rack_cluster()
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=4, ep_size=16), world_size=32)
    return topology, place(plan, topology, names, command=["train.py", "--config", "a b.yaml"])


def _fake_torchrun(tmp_path: Path) -> dict[str, str]:
    """A ``torchrun`` on PATH that prints the arguments it was started with."""
    (tmp_path / "torchrun").write_text("#!/bin/bash\nprintf '%s\\n' torchrun \"$@\"\n")
    (tmp_path / "torchrun").chmod(0o755)
    return {"PATH": f"{tmp_path}:{os.environ['PATH']}"}


def _run_task(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=False)


def test_slurm_lines_give_each_node_its_rank_by_its_own_name(tmp_path: Path) -> None:
    """The srun line runs one task per node; each task reads $SLURMD_NODENAME (set by slurmd) and finds
    its node rank in the exported order — no --distribution=arbitrary, no SLURM_HOSTFILE."""
    _, placement = _placement()
    slurm = placement.launch.slurm
    assert slurm.hostfile == placement.order
    assert sorted(parse_hostlist(slurm.nodelist)) == sorted(placement.order)
    script = "\n".join(slurm.script)
    assert "--distribution" not in script and "SLURM_HOSTFILE" not in script
    export, srun = slurm.script
    argv = shlex.split(srun)
    assert argv[:5] == ["srun", "--nodes=8", "--ntasks=8", "--ntasks-per-node=1", "bash"] and argv[5] == "-c"
    task = argv[6]
    base = _fake_torchrun(tmp_path)
    exported = subprocess.run(["bash", "-c", export + ' && printf %s "$MESHCTX_ORDER"'], capture_output=True, text=True)
    assert exported.stdout.split() == list(placement.order)
    for rank, host in enumerate(placement.order):
        out = _run_task(task, {**base, "MESHCTX_ORDER": exported.stdout, "SLURMD_NODENAME": host})
        assert out.returncode == 0, out.stderr
        args = out.stdout.splitlines()
        assert f"--node-rank={rank}" in args and f"--master-addr={placement.order[0]}" in args
        assert args[-3:] == ["train.py", "--config", "a b.yaml"]
    stranger = _run_task(task, {**base, "MESHCTX_ORDER": exported.stdout, "SLURMD_NODENAME": "elsewhere"})
    assert stranger.returncode == 1 and "node elsewhere is not in MESHCTX_ORDER" in stranger.stderr
    assert slurm.segment is None  # each ep group (4 nodes) fits in its rack


def test_kubernetes_pods_find_their_rank_from_the_downward_api_node_name(tmp_path: Path) -> None:
    _, placement = _placement()
    kubernetes = placement.launch.kubernetes
    node_env = {e["name"]: e for e in kubernetes.env}
    assert node_env["MESHCTX_NODE"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert node_env["MESHCTX_ORDER"]["value"].split() == list(placement.order)
    body = kubernetes.to_dict()
    assert body["leader_node_selector"] == {"kubernetes.io/hostname": placement.order[0]}
    service = body["service"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["selector"] == body["leader_labels"]  # type: ignore[index]
    assert "nodes_by_index" not in body and "index_label" not in body
    assert kubernetes.command[:2] == ("bash", "-c")
    script = kubernetes.command[2]
    base = _fake_torchrun(tmp_path)
    for rank, host in enumerate(placement.order):
        out = _run_task(script, {**base, "MESHCTX_ORDER": node_env["MESHCTX_ORDER"]["value"], "MESHCTX_NODE": host})
        args = out.stdout.split()
        assert f"--node-rank={rank}" in args and "--master-addr=meshctx-rendezvous" in args, out.stderr


def test_a_host_name_that_is_not_rfc_1123_never_reaches_a_shell_line() -> None:
    """Issue 23: a node named ``a$(id)`` reached ``--master-addr=`` unquoted inside ``bash -c``."""
    names = ["a$(id)", "b-1", "c_2", "ok.example.com"]
    topology = Topology.of([Node(n, 4, "r0", "l0", "s0") for n in names])
    plan = plan_mesh("fsdp2", ParallelismSizes(tp_size=4), world_size=16)
    with pytest.raises(PlacementError) as raised:
        place(plan, topology)
    (problem,) = raised.value.problems
    assert problem.code == Code.INVALID_HOST_NAME and "'a$(id)'" in problem.message and "'c_2'" in problem.message
    assert "'b-1'" not in problem.message
    with pytest.raises(ValueError, match="RFC 1123"):
        build_launch(["a$(id)"], 4, [], [], topology)
    assert not valid_host_name("-a") and not valid_host_name("a" * 64) and valid_host_name("GPU01.rack-2")


def test_torchrun_static_rendezvous_lines_parse_with_torchrun() -> None:
    torch_run = pytest.importorskip("torch.distributed.run")
    _, placement = _placement()
    torchrun = placement.launch.torchrun
    parser = torch_run.get_args_parser()
    for host, rank in torchrun.node_rank.items():
        argv = shlex.split(torchrun.command.format(node_rank=rank))
        assert argv[0] == "torchrun"
        args = parser.parse_args(argv[1:])
        assert args.node_rank == placement.order.index(host)
        assert (args.nnodes, args.nproc_per_node) == ("8", "4")
        assert args.rdzv_backend == "static" and args.master_addr == placement.order[0]
        assert args.training_script == "train.py" and args.training_script_args == ["--config", "a b.yaml"]


def test_kueue_slices_follow_the_axes() -> None:
    _, placement = _placement()
    kueue = placement.launch.kueue
    assert [(s.axis, s.size, s.tier) for s in kueue.slices] == [("ep", 4, "nvlink_domain")]
    assert kueue.annotations == {
        "kueue.x-k8s.io/podset-slice-required-topology": "example.com/rack",
        "kueue.x-k8s.io/podset-slice-size": "4",
        "kueue.x-k8s.io/podset-preferred-topology": "cloud.google.com/gce-topology-block",
    }
    constraints = json.loads(kueue.multi_layer_annotations["kueue.x-k8s.io/podset-slice-required-topology-constraints"])
    assert constraints == [{"topology": "example.com/rack", "size": 4}]
    # Slices of 4 consecutive pods are exactly the ep groups, and the order keeps each in one rack.
    assert placement.axes["ep"].crossing.nvlink_domain == 0


def kueue_refusals(annotations: dict[str, str], pods: int) -> list[str]:
    """The rules of Kueue's webhook for slice annotations (kubernetes-sigs/kueue
    pkg/controller/jobframework/tas_validation.go: ValidateTASPodSetRequest,
    validateSliceRequiredTopologyConstraintsAnnotation, ValidateSliceSizeAnnotationUpperBound)."""
    out = []
    single = "kueue.x-k8s.io/podset-slice-required-topology" in annotations
    size = "kueue.x-k8s.io/podset-slice-size" in annotations
    if single != size:
        out.append("slice topology and size go together")
    if size and not 1 <= int(annotations["kueue.x-k8s.io/podset-slice-size"]) <= pods:
        out.append("slice size out of range")
    raw = annotations.get("kueue.x-k8s.io/podset-slice-required-topology-constraints")
    if raw is not None:
        if single or size:
            out.append("constraints exclusive with the single-level pair")
        layers = json.loads(raw)
        if not 1 <= len(layers) <= 3:
            out.append("1 to 3 layers")
        labels = [layer["topology"] for layer in layers]
        if len(set(labels)) != len(labels):
            out.append(f"repeated topology label: {labels}")
        if any(layer["size"] < 1 for layer in layers):
            out.append("size < 1")
        if any(outer["size"] % inner["size"] for outer, inner in pairwise(layers)):
            out.append("a layer's size must divide the one above it")
    return out


def test_every_kueue_annotation_is_one_kueue_accepts() -> None:
    """360 layouts (tp × cp × ep × pp) on the NVL72 example's cluster: every single-level
    pair and every multi-layer value passes Kueue's webhook rules, and names only labels of tiers the
    topology has."""
    example = nvl72()
    checked = 0
    for tp in (1, 2, 4, 8, 16):
        for cp in (1, 2, 4):
            for ep in (1, 2, 4, 8, 16, 32):
                for pp in (1, 2, 4, 8):
                    sizes = ParallelismSizes(tp_size=tp, cp_size=cp, ep_size=ep, pp_size=pp)
                    try:
                        plan = plan_mesh("fsdp2", sizes, world_size=512)
                    except TopologyError:  # sizes the planner refuses are not layouts
                        continue
                    kueue = place(plan, example.topology, example.allocation).launch.kueue
                    assert kueue_refusals(dict(kueue.annotations), 128) == [], (sizes, kueue)
                    multi = dict(kueue.multi_layer_annotations)
                    multi.pop("kueue.x-k8s.io/podset-preferred-topology", None)
                    assert kueue_refusals(multi, 128) == [], (sizes, kueue)
                    assert len(kueue.slices) <= 3 and len({s.topology for s in kueue.slices}) == len(kueue.slices)
                    checked += 1
    assert checked == 360
    no_spine = Topology.of([Node(f"n{i}", 4, f"r{i // 4}", None, None) for i in range(8)])
    kueue = place(plan_mesh("fsdp2", ParallelismSizes(tp_size=8, ep_size=16), world_size=32), no_spine).launch.kueue
    labels = {s.topology for s in kueue.slices} | set(kueue.annotations.values())
    assert "cloud.google.com/gce-topology-block" not in labels  # no node has a spine: not a level


def test_the_docs_nvl72_example_gets_one_layer_per_label() -> None:
    kueue = nvl72().placement().launch.kueue
    layers = json.loads(kueue.multi_layer_annotations["kueue.x-k8s.io/podset-slice-required-topology-constraints"])
    assert layers == [{"topology": "nvidia.com/gpu.clique", "size": 8}]  # was clique 8 then clique 2
    assert kueue.annotations["kueue.x-k8s.io/podset-slice-size"] == "8"


def _assignment(order: tuple[str, ...], topology: Topology, counts: dict[str, int] | None = None) -> dict[str, object]:
    nodes = topology.by_name()
    return {
        "levels": ["example.com/rack", "kubernetes.io/hostname"],
        "domains": [
            {"values": [nodes[h].nvlink_domain if h in nodes else "rack9", h], "count": (counts or {}).get(h, 1)}
            for h in order
        ],
    }


def test_an_admitted_assignment_that_matches_passes() -> None:
    topology, placement = _placement()
    assert check_topology_assignment(placement.order, topology, _assignment(placement.order, topology)) == []


def test_assignment_problems_are_named() -> None:
    topology, placement = _placement()
    order = placement.order
    bad = _assignment((*order[:-1], "stranger"), topology, {order[0]: 2})
    bad["domains"][1]["values"][0] = "rack9"  # type: ignore[index]
    codes = [p.code for p in check_topology_assignment(order, topology, bad)]
    assert codes == [
        Code.ASSIGNMENT_HOSTS_DIFFER,
        Code.ASSIGNMENT_PODS_PER_NODE,
        Code.ASSIGNMENT_DOMAIN_MISMATCH,
    ]
    no_hosts = {"levels": ["example.com/rack"], "domains": [{"values": ["rack0"], "count": 8}]}
    (problem,) = check_topology_assignment(order, topology, no_hosts)
    assert problem.code == Code.ASSIGNMENT_NO_HOSTNAME_LEVEL
    with pytest.raises(ValueError, match="levels"):
        check_topology_assignment(order, topology, {"slices": []})


def test_a_v1beta2_assignment_is_read_like_its_v1beta1_form() -> None:
    topology, placement = _placement()
    order = placement.order
    nodes = topology.by_name()
    racks = sorted({nodes[h].nvlink_domain or "" for h in order})
    slices = []
    for rack in racks:
        hosts = [h for h in order if nodes[h].nvlink_domain == rack]
        slices.append(
            {
                "domainCount": len(hosts),
                "valuesPerLevel": [{"universal": rack}, {"individual": {"roots": hosts}}],
                "podCounts": {"universal": 1},
            }
        )
    v1beta2 = {"levels": ["example.com/rack", "kubernetes.io/hostname"], "slices": slices}
    assert check_topology_assignment(order, topology, v1beta2) == []
    slices[0]["podCounts"] = {"individual": [2] + [1] * (slices[0]["domainCount"] - 1)}  # type: ignore[operator]
    slices[1]["valuesPerLevel"][0] = {"universal": "rack9"}  # type: ignore[index]
    codes = [p.code for p in check_topology_assignment(order, topology, v1beta2)]
    assert codes == [Code.ASSIGNMENT_PODS_PER_NODE, Code.ASSIGNMENT_DOMAIN_MISMATCH]
    with pytest.raises(ValueError, match="roots"):
        check_topology_assignment(
            order,
            topology,
            {
                "levels": ["kubernetes.io/hostname"],
                "slices": [
                    {
                        "domainCount": 2,
                        "valuesPerLevel": [{"individual": {"roots": ["x"]}}],
                        "podCounts": {"universal": 1},
                    }
                ],
            },
        )


def test_topology_sorted_order_is_a_reported_baseline() -> None:
    _, placement = _placement()
    assert set(placement.baselines) == {"lexicographic", "natural", "topology"}
    # racks in order: the topology-sorted order keeps every ep group (one rack of 4) together, like meshctx
    assert placement.baselines["topology"]["ep"].nvlink_domain == 0
    assert placement.vector() <= tuple(c for row in placement.baselines["topology"].values() for c in row.as_tuple())
