"""Kubernetes ``batch/v1`` Indexed Job and JobSet (``jobset.x-k8s.io/v1alpha2``) running torchrun: one pod per
node, all at once (``parallelism = completions = nnodes``), node rank = the pod's completion index.

torchrun uses its static rendezvous (``--master-addr``/``--node-rank``) rather than c10d so that node rank
``i`` is pod ``i``, the order placement and Kueue's topology slices assume. The first pod's stable DNS name
is the master: for a Job it needs the headless Service rendered with it (``subdomain``); a JobSet creates
its own. The ``meshctx.io/*`` annotations let the admission webhook re-check the workload.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..plan import MeshPlan
from .annotations import plan_annotations
from .kubeflow import DNS_1035, QUEUE_LABEL
from .kueue import kueue_annotations
from .spec import DEFAULT_MASTER_PORT, LaunchError, LaunchSpec, Rendering, check_launch, job_env
from .text import yaml_text
from .torchrun import torchrun_command

JOBSET_API = "jobset.x-k8s.io/v1alpha2"
#: The JobSet's one replicated job; pods are named ``<jobset>-workers-<job>-<index>``.
REPLICATED_JOB = "workers"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: A pod's hostname (at most 63 characters) is the JobSet name plus this suffix and the pod's index.
JOBSET_SUFFIX = f"-{REPLICATED_JOB}-0-"
#: The longest hostname (an RFC 1123 label) Kubernetes gives a pod.
HOSTNAME_MAX = 63


def _check(plan: MeshPlan, launch: LaunchSpec, kind: str, suffix: str) -> None:
    """The checks of every launch, a fixed node count, and a name short enough that the last pod's hostname
    ``<name><suffix><last index>`` is at most 63 characters (the API server refuses the workload otherwise)."""
    check_launch(plan, launch)
    errors = []
    if launch.elastic:
        errors.append(("nnodes", f"a {kind} runs a fixed number of pods (parallelism); give a fixed node count"))
    last = f"{suffix}{launch.node_range[1] - 1}"
    longest = HOSTNAME_MAX - len(last)
    if not (DNS_1035.match(launch.job_name) and len(launch.job_name) <= longest):
        errors.append(
            (
                "job_name",
                f"a {kind} name here must be an RFC 1035 label of ≤ {longest} of a-z 0-9 - (the last pod's hostname "
                f"<name>{last} must be at most {HOSTNAME_MAX} characters), got {launch.job_name!r}"
                f"{f' ({len(launch.job_name)} characters)' if len(launch.job_name) > longest else ''}",
            )
        )
    if launch.slice_topology or launch.podset_topology:
        try:
            kueue_annotations(plan, launch)
        except LaunchError as error:
            errors += error.errors
    if errors:
        raise LaunchError(errors)


def _master(launch: LaunchSpec, default_host: str) -> tuple[str, str]:
    if launch.rdzv_endpoint:
        host, _, port = launch.rdzv_endpoint.rpartition(":")
        if host and port.isdigit():
            return host, port
        raise LaunchError([("rdzv_endpoint", f"expected HOST:PORT, got {launch.rdzv_endpoint!r}")])
    return default_host, str(launch.port)


def _pod_spec(plan: MeshPlan, launch: LaunchSpec, master: tuple[str, str]) -> dict[str, object]:
    nodes = launch.node_range[0]
    argv = [
        "torchrun",
        f"--nnodes={nodes}",
        f"--nproc-per-node={launch.nproc_per_node}",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={master[0]}",
        f"--master-port={master[1]}",
        *torchrun_command(launch.command),
    ]
    container: dict[str, object] = {"name": "trainer"}
    if launch.image:
        container["image"] = launch.image
    container |= {
        "command": argv,
        "env": [{"name": k, "value": v} for k, v in job_env(plan, launch).items()],
        "resources": {"limits": {"nvidia.com/gpu": launch.nproc_per_node}},
    }
    return {"restartPolicy": "Never", "containers": [container]}


def _job_spec(plan: MeshPlan, launch: LaunchSpec, master: tuple[str, str], **pod: object) -> dict[str, object]:
    nodes = launch.node_range[0]
    return {
        "completionMode": "Indexed",
        "completions": nodes,
        "parallelism": nodes,
        "backoffLimit": 0,
        "template": _template(plan, launch, {**pod, **_pod_spec(plan, launch, master)}),
    }


def _template(plan: MeshPlan, launch: LaunchSpec, spec: dict[str, object]) -> dict[str, object]:
    """The pod template, with Kueue's topology annotations when ``slice_topology``/``podset_topology`` are given."""
    annotations = kueue_annotations(plan, launch)
    return {"metadata": {"annotations": annotations}, "spec": spec} if annotations else {"spec": spec}


def _metadata(plan: MeshPlan, launch: LaunchSpec) -> dict[str, object]:
    metadata: dict[str, object] = {"name": launch.job_name, "annotations": plan_annotations(plan)}
    if launch.queue:
        metadata["labels"] = {QUEUE_LABEL: launch.queue}
    return metadata


def rendezvous_service(name: str, selector: Mapping[str, str], port: int = DEFAULT_MASTER_PORT) -> dict[str, object]:
    """The headless Service that gives the pod hosting torchrun's rendezvous a stable DNS name ``name``, ready
    or not (the other pods reach it before it is ready)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": dict(selector),
            "ports": [{"name": "rendezvous", "port": port}],
        },
    }


def render_job(plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    _check(plan, launch, "Job", "-")
    name = launch.job_name
    master = _master(launch, f"{name}-0.{name}")
    job: dict[str, object] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(plan, launch),
        "spec": _job_spec(plan, launch, master, subdomain=name),
    }
    service = rendezvous_service(name, {JOB_NAME_LABEL: name}, int(master[1]))
    return Rendering(
        "job",
        job,
        yaml_text(service) + "---\n" + yaml_text(job),
        job_env(plan, launch),
        (
            f"Apply the headless Service {name} with the Job: pod 0 is reached as {master[0]}.",
            "Node rank = the pod's completion index (torchrun's static rendezvous).",
        ),
    )


def render_jobset(plan: MeshPlan, launch: LaunchSpec) -> Rendering:
    _check(plan, launch, "JobSet", JOBSET_SUFFIX)
    name = launch.job_name
    master = _master(launch, f"{name}{JOBSET_SUFFIX}0.{name}")
    doc: dict[str, object] = {
        "apiVersion": JOBSET_API,
        "kind": "JobSet",
        "metadata": _metadata(plan, launch),
        "spec": {
            "failurePolicy": {"maxRestarts": 0},
            "replicatedJobs": [
                {"name": REPLICATED_JOB, "replicas": 1, "template": {"spec": _job_spec(plan, launch, master)}}
            ],
        },
    }
    return Rendering(
        "jobset",
        doc,
        yaml_text(doc),
        job_env(plan, launch),
        (
            f"The JobSet's own headless Service names pod 0 {master[0]}.",
            "Node rank = the pod's completion index (torchrun's static rendezvous).",
        ),
    )


__all__ = ["render_job", "render_jobset"]
