"""How many nodes and processes per node a Kubernetes workload starts, read from its own spec.

Each reader takes the object and its ``meshctx.io/*`` annotations and returns a ``World``: the node
count (or an elastic ``"MIN:MAX"``), the processes per node, where each was read (for messages), every
unreadable field, or why the world cannot be known from the object. Every number is parsed by
``parse_count`` (capped) before any arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..launch.annotations import NPROC_PER_NODE
from ..plan.request import TopologyRequest
from .job_sizes import FieldProblem, JobSizes, parse_count, shown
from .torchrun_args import CommandTooLong, TorchrunArgs, literal_env, read_torchrun

GPU = "nvidia.com/gpu"
#: ``numProcPerNode`` / ``nprocPerNode`` keywords that leave the count to the runtime (then the GPU limit counts).
NPROC_KEYWORDS = frozenset({"auto", "gpu", "cpu"})
#: Most problems one message lists; a hostile object may hold thousands.
MAX_PROBLEMS = 8


@dataclass
class World:
    """``None`` = unknown; ``sources`` maps ``nnodes``/``nproc_per_node`` to the fields they were read from."""

    nnodes: int | str | None = None
    nproc_per_node: int | None = None
    problems: list[str] = field(default_factory=list)
    unknown: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def count(self, value: object, where: str) -> int | None:
        """``parse_count`` that records the problem instead of raising."""
        try:
            return parse_count(value, where)
        except FieldProblem as problem:
            self.problems.append(str(problem))
            return None

    def mapping(self, value: object, where: str) -> Mapping[str, Any]:
        """``value`` if it is a mapping, ``{}`` if absent; anything else is a problem."""
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return value
        self.problems.append(f"{where} must be a mapping, got {shown(value)}")
        return {}

    def items(self, value: object, where: str) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self.problems.append(f"{where} must be a list, got {shown(value)}")
        return []

    def set(self, nnodes: int | str | None, nnodes_source: str, nproc: int | None, nproc_source: str) -> None:
        self.nnodes, self.nproc_per_node = nnodes, nproc
        self.sources = {"nnodes": nnodes_source, "nproc_per_node": nproc_source, "world_size": nnodes_source}

    def key(self) -> tuple[object, ...]:
        """What an update must leave alone for the workload not to need a new check."""
        return (self.nnodes, self.nproc_per_node, tuple(self.problems), self.unknown)


def workload_request(job: JobSizes, world: World) -> TopologyRequest:
    """The topology a workload asks for: its sizes and model from the annotations, its world from the spec."""
    return TopologyRequest(
        strategy=job.strategy,
        sizes=job.sizes,
        nnodes=world.nnodes,
        nproc_per_node=world.nproc_per_node,
        model=job.model,
    )


def get(data: object, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _path(where: str, rest: str) -> str:
    return f"{where}.{rest}" if where else rest


def container_gpus(container: object, where: str, world: World) -> int:
    limit = get(container, "resources", "limits", GPU)
    return 0 if limit is None else world.count(limit, f"{where}.resources.limits.{GPU}") or 0


def pod_gpus(pod: object, where: str, world: World) -> int:
    """Sum of the ``nvidia.com/gpu`` limits of a pod template's containers."""
    containers = world.items(get(pod, "spec", "containers"), _path(where, "spec.containers"))
    return sum(container_gpus(c, _path(where, f"spec.containers[{i}]"), world) for i, c in enumerate(containers))


def annotated_nproc(annotations: Mapping[str, object], world: World) -> int | None:
    return world.count(annotations[NPROC_PER_NODE], NPROC_PER_NODE) if NPROC_PER_NODE in annotations else None


def _nproc_field(value: object, where: str, world: World) -> int | None:
    """``numProcPerNode``: a count, or a keyword leaving it to the runtime (``None``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NPROC_KEYWORDS):
        return None
    return world.count(value, where)


def trainjob_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """``spec.trainer.numNodes × numProcPerNode``; numProcPerNode falls back to the GPU limit of
    ``resourcesPerNode``, then the ``meshctx.io/nproc-per-node`` annotation."""
    world = World()
    trainer = world.mapping(get(obj, "spec", "trainer"), "spec.trainer")
    nodes_field, nproc_field, gpu_field = (
        "spec.trainer.numNodes",
        "spec.trainer.numProcPerNode",
        f"spec.trainer.resourcesPerNode.limits.{GPU}",
    )
    nodes = None
    if trainer.get("numNodes") is None:
        world.unknown = f"{nodes_field} is not set (the runtime decides it); set it to let meshctx check"
    else:
        nodes = world.count(trainer["numNodes"], nodes_field)
    gpu_limit = get(trainer, "resourcesPerNode", "limits", GPU)
    nproc, source = _first(
        [
            (nproc_field, lambda: _nproc_field(trainer.get("numProcPerNode"), nproc_field, world)),
            (gpu_field, lambda: None if gpu_limit is None else world.count(gpu_limit, gpu_field)),
            (NPROC_PER_NODE, lambda: annotated_nproc(annotations, world)),
        ]
    )
    world.set(nodes, nodes_field, nproc, source)
    if nproc is None and world.unknown is None and not world.problems:
        world.unknown = "spec.trainer.numProcPerNode is not a number; set it or meshctx.io/nproc-per-node"
    return world


def _first(sources: list[tuple[str, Callable[[], int | None]]]) -> tuple[int | None, str]:
    """The first source that gives a number, and its name."""
    for name, read in sources:
        value = read()
        if value is not None:
            return value, name
    return None, sources[0][0]


def pytorchjob_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """Sum of ``Master``/``Worker`` replicas × ``spec.nprocPerNode`` (else the deprecated
    ``elasticPolicy.nProcPerNode``, the annotation, the Worker's GPU limit); with an ``elasticPolicy``
    ``minReplicas``/``maxReplicas`` the nodes are that range."""
    world = World()
    specs = world.mapping(get(obj, "spec", "pytorchReplicaSpecs"), "spec.pytorchReplicaSpecs")
    if not specs:
        world.problems.append("spec.pytorchReplicaSpecs is missing")
        return world
    nodes = 0
    for role in ("Master", "Worker"):
        if role in specs:
            where = f"spec.pytorchReplicaSpecs.{role}.replicas"
            replicas = get(specs, role, "replicas")
            nodes += 1 if replicas is None else (world.count(replicas, where) or 0)
    elastic = world.mapping(get(obj, "spec", "elasticPolicy"), "spec.elasticPolicy")
    nnodes: int | str | None = nodes or None
    nodes_source = "spec.pytorchReplicaSpecs replicas"
    if elastic.get("minReplicas") is not None and elastic.get("maxReplicas") is not None:
        low = world.count(elastic["minReplicas"], "spec.elasticPolicy.minReplicas")
        high = world.count(elastic["maxReplicas"], "spec.elasticPolicy.maxReplicas")
        nodes_source = "spec.elasticPolicy.minReplicas:maxReplicas"
        if low is not None and high is not None and low > high:
            world.problems.append(f"spec.elasticPolicy.minReplicas {low} is above maxReplicas {high}")
        elif low is not None and high is not None:
            nnodes = f"{low}:{high}" if low != high else low
    template = get(specs, "Worker", "template") or get(specs, "Master", "template")
    role = "Worker" if get(specs, "Worker", "template") else "Master"
    nproc, source = _first(
        [
            ("spec.nprocPerNode", lambda: _nproc_field(get(obj, "spec", "nprocPerNode"), "spec.nprocPerNode", world)),
            (
                "spec.elasticPolicy.nProcPerNode",
                lambda: _nproc_field(elastic.get("nProcPerNode"), "spec.elasticPolicy.nProcPerNode", world),
            ),
            (NPROC_PER_NODE, lambda: annotated_nproc(annotations, world)),
            (
                f"spec.pytorchReplicaSpecs.{role}.template GPU limits",
                lambda: pod_gpus(template, f"spec.pytorchReplicaSpecs.{role}.template", world) or None,
            ),
        ]
    )
    world.set(nnodes, nodes_source, nproc, source)
    if nproc is None and not world.problems:
        world.unknown = "spec.nprocPerNode is not a number and the pods request no nvidia.com/gpu"
    return world


def jobset_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """Every replicated job whose pods request ``nvidia.com/gpu`` or carry the
    ``meshctx.io/nproc-per-node`` annotation counts ``replicas × parallelism`` pods, each running
    that annotation's (else the JobSet's, else its GPU count) processes. Other jobs (e.g. an
    initializer) are not in the world; the counted ones must agree on processes per pod."""
    world = World()
    jobs = world.items(get(obj, "spec", "replicatedJobs"), "spec.replicatedJobs")
    if not jobs:
        if not world.problems:
            world.problems.append("spec.replicatedJobs is missing")
        return world
    default = annotated_nproc(annotations, world)
    pods, per_pod = 0, set()
    for index, job in enumerate(jobs):
        where = f"spec.replicatedJobs[{index}]"
        if not isinstance(job, Mapping):
            world.problems.append(f"{where} must be a mapping, got {shown(job)}")
            continue
        replicas = world.count(job.get("replicas", 1), f"{where}.replicas")
        parallelism = world.count(
            get(job, "template", "spec", "parallelism") or 1, f"{where}.template.spec.parallelism"
        )
        pod = get(job, "template", "spec", "template")
        pod_annotations = world.mapping(
            get(pod, "metadata", "annotations"), f"{where}.template.spec.template.metadata.annotations"
        )
        own, gpus = annotated_nproc(pod_annotations, world), pod_gpus(pod, f"{where}.template.spec.template", world)
        nproc = own or (default or gpus if gpus else None)
        if nproc and replicas is not None and parallelism is not None:
            pods += (
                replicas * parallelism
            )  # each factor ≤ MAX_COUNT, and there are at most as many jobs as the body holds
            per_pod.add(nproc)
    if len(per_pod) > 1:
        world.problems.append(f"replicated jobs run different processes per pod ({sorted(per_pod)}); meshctx needs one")
    elif per_pod:
        world.set(pods, "spec.replicatedJobs replicas × parallelism", per_pod.pop(), "processes per pod")
    elif not world.problems:
        world.unknown = "no replicated job requests nvidia.com/gpu or sets meshctx.io/nproc-per-node"
    return world


# ------------------------------------------------------------------------------------ pods running torchrun
def _dynamic(value: str) -> bool:
    """A value only the kubelet or the shell knows (``$(VAR)`` from ``valueFrom``, ``$VAR``)."""
    return "$" in value


def _torchrun_nodes(args: TorchrunArgs, world: World) -> int | str | None:
    low_text, sep, high_text = args.nnodes.partition(":")
    low = world.count(low_text, args.nnodes_source)
    high = world.count(high_text, args.nnodes_source) if sep else low
    if low is None or high is None:
        return None
    if low > high:
        world.problems.append(f"{args.nnodes_source} {low}:{high} has MIN above MAX")
        return None
    return low if low == high else f"{low}:{high}"


def _torchrun_nproc(args: TorchrunArgs, gpus: int, world: World) -> int | None:
    value = args.nproc_per_node.strip().lower()
    if value in ("gpu", "auto"):
        return gpus or None
    if value == "cpu":
        return None
    return world.count(args.nproc_per_node, args.nproc_source)


@dataclass
class PodLaunch:
    """What a pod template's containers say: torchrun's settings (if one runs it) or the GPU limits."""

    torchrun: TorchrunArgs | None
    nnodes: int | str | None
    nproc: int | None
    env_nproc: int | None
    gpus: int


def pod_launch(pod: object, where: str, world: World) -> PodLaunch:
    launches: list[tuple[TorchrunArgs, int]] = []
    env_nproc = None
    total_gpus = 0
    containers = world.items(get(pod, "spec", "containers"), _path(where, "spec.containers"))
    for index, container in enumerate(containers):
        name = _path(where, f"spec.containers[{index}]")
        if not isinstance(container, Mapping):
            world.problems.append(f"{name} must be a mapping, got {shown(container)}")
            continue
        try:
            args = read_torchrun(container, name)
        except CommandTooLong as error:
            world.problems.append(str(error))
            continue
        gpus = container_gpus(container, name, world)
        total_gpus += gpus
        if args is not None:
            launches.append((args, gpus))
        env = literal_env(container)
        if "PET_NPROC_PER_NODE" in env and not _dynamic(env["PET_NPROC_PER_NODE"]):
            env_nproc = world.count(env["PET_NPROC_PER_NODE"], f"{name} env PET_NPROC_PER_NODE")
    if not launches:
        return PodLaunch(None, None, None, env_nproc, total_gpus)
    if len(launches) > 1:
        world.problems.append(
            f"{where or 'the pod'}: {len(launches)} containers run torchrun; meshctx checks pods that run one"
        )
        return PodLaunch(None, None, None, env_nproc, total_gpus)
    args, gpus = launches[0]
    nnodes = None if _dynamic(args.nnodes) else _torchrun_nodes(args, world)
    nproc = None if _dynamic(args.nproc_per_node) else _torchrun_nproc(args, gpus, world)
    return PodLaunch(args, nnodes, nproc, env_nproc, total_gpus)


def _declared_nproc(launch: PodLaunch, annotations: Mapping[str, object], world: World) -> tuple[int | None, str]:
    """Without torchrun in the command: the annotation, else ``PET_NPROC_PER_NODE``, else the GPU limits."""
    return _first(
        [
            (NPROC_PER_NODE, lambda: annotated_nproc(annotations, world)),
            ("env PET_NPROC_PER_NODE", lambda: launch.env_nproc),
            ("the containers' nvidia.com/gpu limits", lambda: launch.gpus or None),
        ]
    )


def job_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """A ``batch/v1`` Job (Indexed for torchrun's static node ranks): ``spec.parallelism`` pods, all
    running at once (``completions``, when set, must equal it); processes per pod from torchrun's
    ``--nproc-per-node`` in the pod's command, else the annotation, ``PET_NPROC_PER_NODE``, the GPU
    limits. A torchrun ``--nnodes`` that is not the pod count is a problem: the pods would never meet."""
    world = World()
    spec = world.mapping(obj.get("spec"), "spec")
    parallelism = world.count(spec.get("parallelism", 1), "spec.parallelism")
    completions = None if spec.get("completions") is None else world.count(spec["completions"], "spec.completions")
    if parallelism is not None and completions is not None and completions != parallelism:
        world.problems.append(
            f"spec.parallelism {parallelism} must equal spec.completions {completions}: torchrun needs every "
            "node running at once"
        )
    pod = get(spec, "template")
    merged = {**world.mapping(get(pod, "metadata", "annotations"), "spec.template.metadata.annotations"), **annotations}
    launch = pod_launch(pod, "spec.template", world)
    if launch.torchrun is not None and parallelism is not None and launch.nnodes is not None:
        low, _, high = str(launch.nnodes).partition(":")
        if not int(low) <= parallelism <= int(high or low):
            world.problems.append(
                f"{launch.torchrun.nnodes_source} is {launch.nnodes} but the Job runs {parallelism} pods "
                f"(spec.parallelism); use --nnodes={parallelism}"
            )
    if launch.torchrun is not None:
        nproc, source = launch.nproc, launch.torchrun.nproc_source
    else:
        nproc, source = _declared_nproc(launch, merged, world)
    world.set(parallelism, "spec.parallelism", nproc, source)
    if nproc is None and not world.problems:
        world.unknown = (
            "the pods' processes per node are unknown; set torchrun --nproc-per-node or meshctx.io/nproc-per-node"
        )
    return world


def pod_world(obj: Mapping[str, Any], annotations: Mapping[str, object]) -> World:
    """A Pod running torchrun: ``--nnodes`` (else ``PET_NNODES``, else 1) × ``--nproc-per-node``."""
    world = World()
    launch = pod_launch(obj, "", world)
    if launch.torchrun is None:
        if not world.problems:
            world.unknown = "the pod's command does not run torchrun, so its node count is unknown"
        return world
    world.set(launch.nnodes, launch.torchrun.nnodes_source, launch.nproc, launch.torchrun.nproc_source)
    if (launch.nnodes is None or launch.nproc is None) and not world.problems:
        world.unknown = "torchrun's --nnodes or --nproc-per-node is only known when the pod runs"
    return world


Reader = Callable[[Mapping[str, Any], Mapping[str, object]], World]

#: (API group, kind) → how its world is read.
WORKLOADS: dict[tuple[str, str], Reader] = {
    ("trainer.kubeflow.org", "TrainJob"): trainjob_world,
    ("kubeflow.org", "PyTorchJob"): pytorchjob_world,
    ("jobset.x-k8s.io", "JobSet"): jobset_world,
    ("batch", "Job"): job_world,
    ("", "Pod"): pod_world,
}
