"""Kubernetes renderings the API server accepts: pod hostnames within 63 characters, and Kueue's topology settings
applied to the pods they concern (Job, JobSet) or refused where meshctx cannot place them (TrainJob)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from meshctx.config import ParallelismSizes as P
from meshctx.launch import LaunchError, LaunchSpec, render
from meshctx.plan import plan_mesh

PLAN = plan_mesh("fsdp2", P(tp_size=8, pp_size=2), world_size=32)


def launch(**options: Any) -> LaunchSpec:
    return LaunchSpec(nnodes=4, nproc_per_node=8, **options)


def hostnames(target: str, name: str, nodes: int) -> list[str]:
    """The pods' hostnames Kubernetes gives an Indexed Job (``<job>-<index>``) or a JobSet's one replicated job
    (``<jobset>-workers-0-<index>``)."""
    prefix = f"{name}-" if target == "job" else f"{name}-workers-0-"
    return [f"{prefix}{index}" for index in range(nodes)]


@pytest.mark.parametrize("target", ["job", "jobset"])
@pytest.mark.parametrize("nodes", [2, 16])
def test_a_name_is_refused_exactly_when_a_pods_hostname_would_pass_63_characters(target: str, nodes: int) -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8), world_size=8 * nodes)
    for length in range(40, 64):
        name = "a" * length
        fits = all(len(host) <= 63 for host in hostnames(target, name, nodes))
        spec = LaunchSpec(nnodes=nodes, nproc_per_node=8, job_name=name)
        if fits:
            render(target, plan, spec)
            continue
        with pytest.raises(LaunchError) as info:
            render(target, plan, spec)
        [(field, detail)] = info.value.errors
        assert field == "job_name" and "63" in detail and f"({length} characters)" in detail


def test_the_cli_refuses_a_62_character_job_name_on_two_nodes() -> None:
    flags = ["--nnodes", "2", "--nproc-per-node", "8", "--tp", "8", "--job-name", "a" * 62]
    done = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "render", "job", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "--job-name" in done.stderr and "<name>-1 must be at most 63 characters" in done.stderr


@pytest.mark.parametrize("target", ["job", "jobset"])
def test_kueue_topology_settings_reach_the_pod_template(target: str) -> None:
    options = {"slice_topology": "rack", "slice_group": "stage", "podset_topology": "block"}
    expected = render("kueue", PLAN, launch(**options)).data["metadata"]["annotations"]  # type: ignore[index]
    data = render(target, PLAN, launch(**options)).data
    job = data["spec"] if target == "job" else data["spec"]["replicatedJobs"][0]["template"]["spec"]  # type: ignore[index]
    assert job["template"]["metadata"]["annotations"] == expected  # type: ignore[index]
    assert expected == {
        "kueue.x-k8s.io/podset-required-topology": "block",
        "kueue.x-k8s.io/podset-slice-required-topology": "rack",
        "kueue.x-k8s.io/podset-slice-size": "2",
    }
    plain = render(target, PLAN, launch()).data
    assert "kueue.x-k8s.io" not in str(plain)


@pytest.mark.parametrize("option", ["slice_topology", "podset_topology"])
def test_a_trainjob_refuses_topology_settings_it_cannot_apply(option: str) -> None:
    with pytest.raises(LaunchError) as info:
        render("trainjob", PLAN, launch(**{option: "rack"}))
    [(field, detail)] = info.value.errors
    assert field == option and "render kueue" in detail


@pytest.mark.parametrize("target", ["job", "jobset"])
def test_the_chosen_master_port_reaches_torchrun_and_the_rendezvous_service(target: str) -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8), world_size=16)
    rendering = render(target, plan, LaunchSpec(nnodes=2, nproc_per_node=8, master_port=31337, command=("t.py",)))
    assert "--master-port=31337" in rendering.text and "29500" not in rendering.text
    if target == "job":  # the Job's own headless Service; a JobSet's is made by JobSet, on no fixed port
        assert "port: 31337" in rendering.text
