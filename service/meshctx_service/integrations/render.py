"""``POST /v1/render/{target}``: launcher settings (every target of ``meshctx.launch.TARGETS``) for a valid
topology, from the torch-free ``meshctx.launch``; this module only adapts it to HTTP."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, StrictInt, create_model

from meshctx.launch import TARGETS, LaunchError, LaunchSpec, validate_and_render
from meshctx.launch.spec import DEFAULT_MASTER_PORT, RENDER_OPTION_NAMES, RENDER_OPTIONS, OptionKind, RenderOption
from meshctx.plan import ValidationReport
from meshctx.plan.request import TopologyRequest

from ..http.errors import REFUSED, InvalidFields
from ..http.metrics import Metrics
from ..http.wire import Int, Strict, read_body
from ..http.work import off_loop
from ..topology.offload import heavy
from ..topology.schemas import ClusterBody, ModelBody, NodeRange, SizesBody, TopologyBody, ValidationReportOut

router = APIRouter(prefix="/v1")

#: The path's enum is the library's one table of targets.
Target = Annotated[str, Path(description="Launcher to render for", json_schema_extra={"enum": list(TARGETS)})]
Name = Annotated[str, Field(min_length=1, max_length=253)]


Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Argv = Annotated[list[Annotated[str, Field(min_length=1, max_length=4096)]], Field(min_length=1, max_length=256)]


def _field(option: RenderOption) -> tuple[Any, Any]:
    """One ``RENDER_OPTIONS`` entry as a body field (``meshctx render`` makes the same entry a flag)."""
    kind: Any
    if option.kind is OptionKind.ARGV:
        assert isinstance(option.default, tuple), option  # an argv option's default is its argv (DEFAULT_COMMAND)
        return Argv, Field(default=list(option.default), description=option.help)
    if option.kind is OptionKind.CHOICE:
        kind = Literal[option.choices]
    elif option.kind is OptionKind.PORT:
        kind = Port
    else:
        kind = Name
    if option.default is None:
        kind = kind | None
    return kind, Field(default=option.default, description=option.help)


class RenderTopology(Strict):
    """A topology on ``nnodes`` × ``nproc_per_node`` (the validate request's fields, without
    ``world_size``/``ranks``: launchers count nodes). ``cluster`` gives the nodes' GPUs, so a rendering never
    starts more processes on a node than it has GPUs."""

    strategy: Annotated[str, Field(max_length=64, examples=["fsdp2"])]
    nnodes: Int | NodeRange
    nproc_per_node: Int
    sizes: SizesBody = Field(default_factory=SizesBody)
    cluster: ClusterBody | None = None
    model: ModelBody | None = None

    def topology(self) -> TopologyBody:
        return TopologyBody(
            strategy=self.strategy,
            nnodes=self.nnodes,
            nproc_per_node=self.nproc_per_node,
            sizes=self.sizes,
            cluster=self.cluster,
            model=self.model,
        )

    def launch(self) -> LaunchSpec:
        options = self.model_dump(include=set(RENDER_OPTION_NAMES))
        return LaunchSpec.from_options(self.nnodes, self.nproc_per_node, options)


#: The topology plus every launch setting of ``meshctx.launch.RENDER_OPTIONS`` (the flags of ``meshctx render``).
if TYPE_CHECKING:  # the fields below are made at run time; to a type checker the body is its topology part
    RenderBody = RenderTopology
else:
    RenderBody = create_model(
        "RenderBody",
        __base__=RenderTopology,
        __doc__=(RenderTopology.__doc__ or "")
        + " Plus how the job is started: the fields of ``meshctx render``'s flags.",
        **{option.name: _field(option) for option in RENDER_OPTIONS},
    )


class RenderingOut(BaseModel):
    target: str
    data: dict[str, Any] = Field(description="The document in the target's own field names")
    text: str = Field(description="What to paste: a shell script, YAML or annotations")
    env: dict[str, str] = Field(description="The MESHCTX_* environment the job gets")
    notes: list[str]


class RenderReportOut(ValidationReportOut):
    rendering: RenderingOut | None = Field(description="null when the topology is invalid")


RENDER_EXAMPLES: dict[str, dict[str, Any]] = {
    "torchrun": {
        "summary": "torchrun on 4 nodes of 8 GPUs, tp 8 × pp 2",
        "value": {
            "strategy": "fsdp2",
            "nnodes": 4,
            "nproc_per_node": 8,
            "sizes": {"tp_size": 8, "pp_size": 2},
            "rdzv_endpoint": f"head:{DEFAULT_MASTER_PORT}",
            "command": ["train.py", "--config", "llm.yaml"],
        },
    },
    "kueue": {
        "summary": "Kueue slices keeping each tp group of 8 in one rack",
        "value": {
            "strategy": "fsdp2",
            "nnodes": 8,
            "nproc_per_node": 4,
            "sizes": {"tp_size": 8},
            "slice_topology": "cloud.provider.com/topology-rack",
        },
    },
}


@router.post(
    "/render/{target}",
    tags=["integration"],
    response_model=None,
    responses={
        200: {"model": RenderReportOut, "description": "The validate report plus the rendering (null if invalid)."},
        **REFUSED,
    },
    summary="Launcher settings for a valid topology",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/RenderBody"},
                    "examples": RENDER_EXAMPLES,
                }
            },
        }
    },
)
async def render(
    target: Annotated[Target, Path(description="Launcher to render for")],
    request: Request,
) -> Response:
    """What ``meshctx render TARGET --json`` prints: the topology is validated over every node count
    first; an invalid one is a 200 with ``valid: false`` and ``rendering: null`` (as ``/v1/validate``),
    and the launch settings are only checked for a valid one. Launch settings the target cannot
    express (no rendezvous endpoint for a multi-node torchrun, no ``slice_topology`` for Kueue,
    an elastic range for a TrainJob, …) are a 422 naming each field. The body is read as ``/v1/validate``
    reads its own (every malformed body is a 422), and a wide range is planned on the work pool."""
    if target not in TARGETS:
        raise InvalidFields([("target", f"unknown target {target!r}; use one of {', '.join(TARGETS)}")])
    body = await read_body(request, RenderBody)
    ask = body.topology().checked_request(request.app.state.settings)
    try:
        render_ask = partial(_render, target, body.launch())
        report, encoded = await off_loop(request.app.state, render_ask, ask, inline=not heavy(ask))
    except LaunchError as error:
        raise InvalidFields(error.errors) from None
    metrics: Metrics = request.app.state.metrics
    metrics.observe_report("render", report)
    return Response(encoded, media_type="application/json")


def _render(target: str, launch: LaunchSpec, ask: TopologyRequest) -> tuple[ValidationReport, bytes]:
    """The report and the encoded answer (encoded here, so a wide range's answer is built off the event loop)."""
    report, rendering = validate_and_render(
        target, ask.strategy, ask.sizes, launch, model=ask.model, cluster=ask.cluster
    )
    answer = report.to_dict() | {"rendering": rendering.to_dict() if rendering is not None else None}
    return report, orjson.dumps(answer)
