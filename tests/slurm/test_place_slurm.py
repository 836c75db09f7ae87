"""``meshctx place``'s Slurm lines inside a real Slurm: the exported order and one ``srun`` task per node
that finds its node rank from ``$SLURMD_NODENAME`` run torchrun's static rendezvous, and every rank lands
on the host the order gives its node rank (one node here: trivial, but every line is the real one)."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

from meshctx.place.importers import import_slurm_conf
from tests.slurm.conftest import Cluster

JOB = """\
import os, socket
print(f"landed rank={os.environ['RANK']} node_rank={os.environ['GROUP_RANK']} procid={os.environ['SLURM_PROCID']} "
      f"world={os.environ['WORLD_SIZE']} host={socket.gethostname().split('.')[0]}", flush=True)
"""
GPUS = 2  # torchrun workers per node: few, the machine is small


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_place_slurm_lines_put_each_rank_on_its_host_file_line(slurm_cluster: Cluster, tmp_path: Path) -> None:
    host = socket.gethostname().split(".")[0]  # the live node's name (.ci/slurm-up names it after this host)
    topology = {"nodes": [{"name": host, "gpus": GPUS, "nvlink_domain": "nvl0", "leaf": "leaf0", "spine": None}]}
    (tmp_path / "topology.json").write_text(json.dumps(topology))
    _place_and_run(slurm_cluster, tmp_path, host, "--topology", str(tmp_path / "topology.json"))


def test_place_slurm_lines_run_under_topology_tree(slurm_cluster: Cluster, tmp_path: Path) -> None:
    """The cluster runs topology/tree (.ci/slurm-up's topology.conf: leaf0 over this host and meshctx-2, leaf1
    over meshctx-[3-4], spine0 over both); Slurm reports that tree, meshctx reads the same file, and the placed
    job runs under the plugin. Debian's Slurm 22.05 has no topology/block (23.11+), so that form is not run."""
    host = socket.gethostname().split(".")[0]
    config = slurm_cluster.run("scontrol", "show", "config")
    assert re.search(r"^TopologyPlugin\s*=\s*topology/tree$", config.stdout, re.MULTILINE), config.stdout
    shown = slurm_cluster.run("scontrol", "show", "topology")
    assert shown.returncode == 0, shown.stderr
    switches = {
        fields["SwitchName"]: fields
        for fields in (dict(item.split("=", 1) for item in line.split()) for line in shown.stdout.splitlines())
    }
    assert set(switches) == {"leaf0", "leaf1", "spine0"}, shown.stdout
    assert switches["leaf0"]["Level"] == "0" and switches["leaf0"]["Nodes"] in (
        f"{host},meshctx-2",
        f"meshctx-2,{host}",
    )
    assert switches["leaf1"]["Nodes"] == "meshctx-[3-4]"
    assert switches["spine0"]["Level"] == "1" and switches["spine0"]["Switches"] == "leaf[0-1]"
    conf = slurm_cluster.dir / "topology.conf"
    imported = import_slurm_conf(conf.read_text(), gpus_per_node=GPUS).topology.by_name()
    assert (imported[host].leaf, imported[host].spine) == ("leaf0", "spine0")
    assert (imported["meshctx-3"].leaf, imported["meshctx-3"].spine) == ("leaf1", "spine0")
    args = ("--slurm-topology", str(conf), "--gpus-per-node", str(GPUS))
    _place_and_run(slurm_cluster, tmp_path, host, *args)


def _place_and_run(slurm_cluster: Cluster, tmp_path: Path, host: str, *topology: str) -> None:
    """``meshctx place`` on ``host`` with the ``topology`` flags, its Slurm script run by ``sbatch --wait``:
    every rank lands on the host the order gives its node rank."""
    (tmp_path / "job.py").write_text(JOB)
    port = _free_port()
    placed = slurm_cluster.run(
        "meshctx",
        "place",
        *topology,
        "--nodes",
        host,
        "--tp",
        str(GPUS),
        "--command",
        "job.py",
        "--master-port",
        str(port),
        "--json",
    )
    assert placed.returncode == 0, placed.stderr
    body = json.loads(placed.stdout)
    slurm = body["launch"]["slurm"]
    assert slurm["hostfile"] == body["order"] == [host]
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --nodes=1\n#SBATCH --ntasks=1\nset -e\n" + "\n".join(slurm["script"]) + "\n"
    )
    done = slurm_cluster.run(
        "sbatch",
        "--wait",
        "--parsable",
        f"--chdir={tmp_path}",
        f"--output={tmp_path}/out.txt",
        str(script),
        timeout=240,
    )
    deadline = time.monotonic() + 10
    while not (tmp_path / "out.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    output = (tmp_path / "out.txt").read_text() if (tmp_path / "out.txt").exists() else ""
    assert done.returncode == 0, (done.stderr, output)
    # the workers share one output file: read every report wherever it is, their lines may interleave
    landed = [
        match.groupdict()
        for match in re.finditer(
            r"landed rank=(?P<rank>\d+) node_rank=(?P<node_rank>\d+) procid=(?P<procid>\d+) "
            r"world=(?P<world>\d+) host=(?P<host>\S+?)(?=landed |\s|$)",
            output,
        )
    ]
    assert sorted(int(row["rank"]) for row in landed) == list(range(GPUS)), output
    for row in landed:
        node_rank = int(row["node_rank"])
        assert row["host"] == body["order"][node_rank]  # the node found its rank from its own name
        assert row["host"] == body["order"][int(row["rank"]) // body["gpus_per_node"]]  # rank r on order[r // g]
        assert int(row["world"]) == GPUS
