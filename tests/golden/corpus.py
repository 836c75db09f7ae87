"""The golden set: fixed inputs to every public answer meshctx gives — planner reports, plans, rank views,
launcher renderings, placements, and the HTTP routes that keep no state — each reduced to a short digest of its
exact bytes. A refactor must leave every digest unchanged; a deliberate change of an answer regenerates them
(``python -m tests.golden.corpus --write``) and says why in its commit.

The HTTP half runs against a real ``meshctx serve`` on loopback (its bytes include the direct validate path and
the error bodies); headers that change per request (dates, request ids) are not part of an answer's digest."""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from meshctx.config import ParallelismSizes
from meshctx.launch import TARGETS, LaunchError, LaunchSpec, render
from meshctx.place import Node, Topology, place
from meshctx.place.examples import EXAMPLES
from meshctx.plan import ClusterShape, ModelShape, validate_topology
from tests.deploy.test_admission import admission_review, trainjob
from tests.deploy.test_skypilot_policy import user_request

DIGESTS = Path(__file__).with_name("digests.json")
STRATEGIES = ("fsdp2", "megatron_fsdp", "ddp")
WORLDS = (8, 48, 64)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _grid() -> Iterator[tuple[str, str, ParallelismSizes, int]]:
    for strategy, tp, pp, cp, ep, rep, world in itertools.product(
        STRATEGIES, (1, 2, 8), (1, 2), (1, 2), (1, 4), (None, 2), WORLDS
    ):
        sizes = ParallelismSizes(tp_size=tp, pp_size=pp, cp_size=cp, ep_size=ep, dp_replicate_size=rep)
        yield f"{strategy}-tp{tp}-pp{pp}-cp{cp}-ep{ep}-rep{rep}-w{world}", strategy, sizes, world


def library_answers() -> Iterator[tuple[str, bytes]]:
    """Reports (with suggestions), plans with groups, first and last rank views, renderings for every target."""
    for name, strategy, sizes, world in _grid():
        report = validate_topology(strategy, sizes, world_size=world)
        yield f"report/{name}", report.to_json()
        plan = report.plan
        if plan is None:
            continue
        yield f"plan/{name}", _json(plan.to_dict(groups=True))
        yield f"fingerprint/{name}", plan.fingerprint().encode()
        for rank in (0, world - 1):
            yield f"rank/{name}/{rank}", _json(plan.rank_view(rank))
        yield f"kwargs/{name}", _json([plan.parallelize_axis_kwargs(), plan.pipeline_axis_kwargs()])
        if world == 64 and sizes.ep_size == 1 and sizes.dp_replicate_size is None:
            spec = LaunchSpec(nnodes=8, nproc_per_node=8, rdzv_endpoint="head:29500", command=("train.py", "--lr", "1"))
            for target in TARGETS:
                try:
                    rendering = render(target, plan, spec)
                except LaunchError as error:
                    yield f"render/{name}/{target}", str(error).encode()
                    continue
                yield f"render/{name}/{target}", _json(rendering.to_dict())
    cluster = ClusterShape(gpus_per_node=8, nvlink_domain=72, nproc_per_node=8)
    model = ModelShape(num_attention_heads=24, num_key_value_heads=8, num_experts=12, num_hidden_layers=30)
    for tp, ep, nnodes in itertools.product((4, 8, 16), (3, 8), ("2", "2:6")):
        sizes = ParallelismSizes(tp_size=tp, ep_size=ep)
        report = validate_topology("fsdp2", sizes, nnodes=nnodes, nproc_per_node=8, cluster=cluster, model=model)
        yield f"report/shaped-tp{tp}-ep{ep}-n{nnodes}", report.to_json()
    report = validate_topology("fsdp2", ParallelismSizes(tp_size=2, cp_size=4), world_size=16, cp_ring_degree=2)
    yield "report/cp-ring2", report.to_json()
    yield "report/ranks", validate_topology("fsdp2", ParallelismSizes(tp_size=2), ranks=[3, 1, 2, 0]).to_json()


def placement_answers() -> Iterator[tuple[str, bytes]]:
    for example in EXAMPLES:
        built = example()
        yield f"place/{built.title}", _json(built.placement().to_dict())
    nodes = [Node(f"node{i}", 4, f"nvl{i % 2}", f"leaf{i % 2}", "spine0") for i in range(1, 9)]
    plan = validate_topology("fsdp2", ParallelismSizes(tp_size=8), world_size=32).plan
    assert plan is not None
    yield "place/small", _json(place(plan, Topology.of(nodes), tuple(n.name for n in nodes)).to_dict())


def _task(envs: dict[str, str]) -> dict[str, Any]:
    return {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": envs}


def http_requests() -> Iterator[tuple[str, str, str, Any]]:
    """(name, method, path, json body) for every stateless route, valid and not."""
    for name, strategy, sizes, world in _grid():
        if sizes.cp_size == 2 and world == 48:
            continue
        body = {"strategy": strategy, "world_size": world, "sizes": sizes.to_dict()}
        yield f"validate/{name}", "POST", "/v1/validate", body
        if sizes.pp_size == 1 and sizes.ep_size == 1:
            yield f"layout/{name}", "POST", "/v1/layout", body
    bad: list[tuple[str, Any]] = [
        ("not-object", [1, 2]),
        ("unknown-field", {"strategy": "fsdp2", "world_size": 8, "sizes": {"tp": 2}}),
        ("negative", {"strategy": "fsdp2", "world_size": -8, "sizes": {"tp_size": 0}}),
        ("strategy", {"strategy": "zero3", "world_size": 8}),
        ("two-worlds", {"strategy": "fsdp2", "world_size": 8, "nnodes": 2, "nproc_per_node": 4}),
        ("huge", {"strategy": "fsdp2", "world_size": 1 << 40}),
    ]
    for label, body in bad:
        yield f"validate-bad/{label}", "POST", "/v1/validate", body
    base = {"strategy": "fsdp2", "nnodes": 4, "nproc_per_node": 8, "sizes": {"tp_size": 8, "pp_size": 2}}
    for target in TARGETS:
        yield f"render/{target}", "POST", f"/v1/render/{target}", base | {"command": ["train.py", "--lr", "1"]}
        yield f"render-bad/{target}", "POST", f"/v1/render/{target}", base | {"sizes": {"tp_size": 3}}
    yield "render-unknown", "POST", "/v1/render/nope", base
    nodes = [Node(f"node{i}", 4, f"nvl{i % 2}", f"leaf{i % 2}", "spine0") for i in range(1, 9)]
    place_body = {"strategy": "fsdp2", "world_size": 32, "sizes": {"tp_size": 8}}
    place_body["topology"] = Topology.of(nodes).to_dict()
    yield "place/ok", "POST", "/v1/place", place_body | {"nodes": "node[1-8]", "command": ["train.py"]}
    yield "place/bad-nodes", "POST", "/v1/place", place_body | {"nodes": "node[1-9]"}
    yield "place/bad-sizes", "POST", "/v1/place", place_body | {"sizes": {"tp_size": 3}, "nodes": "node[1-8]"}
    for label, marks, count in (
        ("none", {}, 4),
        ("valid", {"meshctx.io/strategy": "fsdp2", "meshctx.io/tp-size": "16"}, 4),
        ("invalid", {"meshctx.io/strategy": "fsdp2", "meshctx.io/tp-size": "3"}, 4),
        ("unreadable", {"meshctx.io/strategy": "fsdp2", "meshctx.io/tp-size": "x"}, 4),
    ):
        review = admission_review(trainjob(marks, count))
        review["request"]["dryRun"] = True  # the run's shared server: admitting registers nothing
        yield f"admission/{label}", "POST", "/v1/admission/kubernetes", review
    yield "admission/not-a-review", "POST", "/v1/admission/kubernetes", {"kind": "Pod"}
    yield "skypilot/none", "POST", "/v1/policy/skypilot", user_request(_task({}))
    yield "skypilot/valid", "POST", "/v1/policy/skypilot", user_request(_task({"MESHCTX_TP_SIZE": "8"}))
    yield "skypilot/invalid", "POST", "/v1/policy/skypilot", user_request(_task({"MESHCTX_TP_SIZE": "3"}))


def http_answers(base_url: str) -> Iterator[tuple[str, bytes]]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for name, method, path, body in http_requests():
            answer = client.request(method, path, json=body)
            head = f"{answer.status_code} {answer.headers.get('content-type')}\n".encode()
            yield f"http/{name}", head + answer.content


def answers(base_url: str) -> dict[str, str]:
    produced: dict[str, str] = {}
    sources: list[Callable[[], Iterator[tuple[str, bytes]]]] = [
        library_answers,
        placement_answers,
        lambda: http_answers(base_url),
    ]
    for source in sources:
        for name, data in source():
            assert name not in produced, f"two golden answers named {name}"
            produced[name] = digest(data)
    return produced


def main() -> None:
    """``python -m tests.golden.corpus --write``: start a server, write digests.json from this tree."""
    import tempfile

    from tests.support.servers import start_server

    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.golden.corpus --write")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            produced = answers(server.url)
        finally:
            server.stop()
    DIGESTS.write_text(json.dumps(produced, indent=0, sort_keys=True) + "\n")
    print(f"{len(produced)} digests written to {DIGESTS}")


if __name__ == "__main__":
    main()
