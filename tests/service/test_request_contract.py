"""One owner of the request shape: the service's body models are made from the library's ``TopologyRequest`` (and its
sizes, cluster and model), so every request the library's client sends parses on the service side, as the same
request, for every route that takes a topology (validate and layout, a registration's ``request``, ``/v1/place``,
``/v1/render/{target}``)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshctx.cli.render import render_body
from meshctx.client import MeshctxClient
from meshctx.config import ParallelismSizes
from meshctx.launch import LaunchSpec
from meshctx.plan import ClusterShape, ModelShape
from meshctx.plan.model import MODEL_FIELDS
from meshctx.plan.request import TopologyRequest
from meshctx.plan.strategies import Strategy
from meshctx_service.integrations.render import RenderBody
from meshctx_service.placement.schemas import PlaceBody
from meshctx_service.registry.schemas import JobIn
from meshctx_service.topology.schemas import TopologyBody
from tests.support.servers import LiveServer

small = st.integers(1, 64)
maybe = st.one_of(st.none(), small)


@st.composite
def requests(draw: st.DrawFn) -> TopologyRequest:
    """Every kind of request the library builds: a world size, nodes (fixed, a range string or a pair), a rank
    subset; with or without a cluster (NVLink domain, processes per node), a model, cp degrees; strategies as
    names or members."""
    sizes = ParallelismSizes(
        tp_size=draw(small), pp_size=draw(small), cp_size=draw(small), ep_size=draw(small),
        dp_size=draw(maybe), dp_replicate_size=draw(maybe),
    )  # fmt: skip
    strategy = draw(st.sampled_from(["fsdp2", "megatron_fsdp", "ddp", *Strategy]))
    request = TopologyRequest(strategy=strategy, sizes=sizes)
    kind = draw(st.sampled_from(["world_size", "nodes", "range", "pair", "ranks"]))
    if kind == "world_size":
        request = dataclasses.replace(request, world_size=draw(small))
    elif kind == "ranks":
        request = dataclasses.replace(request, ranks=tuple(draw(st.lists(st.integers(0, 63), min_size=1))))
    else:
        low, high = sorted((draw(small), draw(small)))
        nnodes = {"nodes": low, "range": f"{low}:{high}", "pair": (low, high)}[kind]
        request = dataclasses.replace(request, nnodes=nnodes, nproc_per_node=draw(small))
    if draw(st.booleans()):
        cluster = ClusterShape(gpus_per_node=draw(small), nvlink_domain=draw(maybe), nproc_per_node=draw(maybe))
        request = dataclasses.replace(request, cluster=cluster)
    if draw(st.booleans()):
        model = ModelShape(**{name: draw(maybe) for name in MODEL_FIELDS})
        request = dataclasses.replace(request, model=model)
    if draw(st.booleans()):
        request = dataclasses.replace(request, cp_ring_degree=draw(small), cp_ulysses_degree=draw(maybe))
    return request


def wire(request: TopologyRequest) -> str:
    """What the client puts on the wire (``MeshctxClient`` posts ``to_dict()`` as JSON)."""
    return json.dumps(request.to_dict())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_request_the_library_sends_parses_as_the_same_request(request: TopologyRequest) -> None:
    body = TopologyBody.model_validate_json(wire(request))
    parsed = body.to_request()
    assert parsed.validate().to_dict() == request.validate().to_dict()
    assert json.dumps(parsed.to_dict()) == wire(request)
    data: dict[str, Any] = json.loads(wire(request))
    assert JobIn.model_validate({"request": data}).request.to_request() == parsed
    place = PlaceBody.model_validate(data | {"topology": {"nodes": [{"name": "n0", "gpus": 8}]}})
    assert place.to_request() == parsed


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_render_body_the_cli_sends_parses(request: TopologyRequest) -> None:
    """``meshctx render --server`` sends the request's strategy, sizes, model and cluster with the launch settings."""
    if request.nnodes is None or request.nproc_per_node is None or request.ranks is not None:
        return
    nnodes = request.to_dict()["nnodes"]
    assert isinstance(nnodes, (int, str))
    launch = LaunchSpec(nnodes=nnodes, nproc_per_node=request.nproc_per_node)
    body = RenderBody.model_validate_json(json.dumps(render_body(request, launch)))
    assert body.topology().to_request().sizes == request.sizes


def test_every_field_of_the_library_request_is_a_field_of_the_body() -> None:
    assert list(TopologyBody.model_fields) == [f.name for f in dataclasses.fields(TopologyRequest)]
    for nested, source in (("sizes", ParallelismSizes), ("cluster", ClusterShape), ("model", ModelShape)):
        model = TopologyBody.model_fields[nested].annotation
        names = {f.name for f in dataclasses.fields(source)}
        assert any(set(getattr(m, "model_fields", ())) == names for m in (model, *getattr(model, "__args__", ())))


def test_the_client_gets_the_offline_answer_for_a_cp_split(live_server: LiveServer) -> None:
    request = TopologyRequest(world_size=16, sizes=ParallelismSizes(cp_size=4), cp_ring_degree=2)
    offline = request.validate()
    assert offline.valid
    with MeshctxClient(live_server.url) as client:
        answer = client.validate(request)
    assert answer == json.loads(json.dumps(offline.to_dict()))
