"""The launch section: what Slurm, torchrun, Kubernetes and Kueue need to impose the order."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from meshctx import ParallelismSizes, plan_mesh
from meshctx.place import Node, Topology, check_topology_assignment, parse_hostlist, place
from meshctx.place.examples import nvl72
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


def test_slurm_hostfile_is_the_order_and_srun_uses_it() -> None:
    _, placement = _placement()
    slurm = placement.launch.slurm
    assert slurm.hostfile == placement.order
    assert sorted(parse_hostlist(slurm.nodelist)) == sorted(placement.order)
    script = "\n".join(slurm.script)
    assert 'export SLURM_HOSTFILE="meshctx-hosts-${SLURM_JOB_ID:-$$}.txt"' in script  # one file per job
    assert "--distribution=arbitrary" in script and "--ntasks-per-node=1" in script
    # The printf line really writes the host file, one host per line, in node-rank order.
    out = subprocess.run(
        ["bash", "-c", slurm.script[0] + " && cat meshctx-hosts-4242.txt && rm meshctx-hosts-4242.txt"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/tmp",
        env={"SLURM_JOB_ID": "4242", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.splitlines() == list(placement.order)
    # The per-task command keeps $SLURM_PROCID for bash inside the task, not for the submitting shell.
    srun = shlex.split(slurm.script[-1])
    assert srun[-3:-1] == ["bash", "-c"] and "--node-rank=$SLURM_PROCID" in srun[-1]
    assert slurm.segment is None  # each ep group (4 nodes) fits in its rack


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


def test_kubernetes_index_and_kueue_slices_follow_the_axes() -> None:
    _, placement = _placement()
    assert placement.launch.kubernetes.nodes_by_index == placement.order
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


def test_segment_is_suggested_when_no_order_avoids_crossings() -> None:
    placement = nvl72().placement()
    assert placement.axes["ep"].lower_bound.nvlink_domain > 0
    assert placement.launch.slurm.segment == 8
    assert "ep groups must cross an NVLink domain" in (placement.launch.slurm.segment_reason or "")


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
