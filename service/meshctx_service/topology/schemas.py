"""Wire models of the topology endpoints (docs/contract.md "Wire format"), shared by every route that takes a topology.

Requests are parsed strictly (unknown fields and non-integers are malformed, 422) and turned into a
``TopologyRequest`` by ``TopologyBody.to_request`` — the one place HTTP input becomes planner input.
Out-of-range *values* (a size of 0, a negative rank) are not malformed: the planner reports them as
problems with a fix, exactly as the CLI does. Response models only document the responses; handlers
send the library's own ``to_dict()`` output unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast, get_type_hints

from pydantic import BaseModel, Field, create_model

from meshctx.config import ParallelismSizes
from meshctx.plan import ClusterShape, ModelShape
from meshctx.plan.request import TopologyRequest

from ..http.errors import InvalidFields
from ..http.wire import Int, Strict
from ..settings import Settings

NodeRange = Annotated[str, Field(pattern=r"^[0-9]{1,9}:[0-9]{1,9}$", examples=["2:8"])]


#: The library's type of a request field → its strict wire type (integers strictly, within ``MAX_INT``).
WIRE_TYPES: dict[object, object] = {int: Int, int | None: Int | None}


def wire_model(name: str, source: type, doc: str, **overrides: object) -> type[Strict]:
    """A strict body model with one field per ``__init__`` field of the library dataclass ``source``, each with its
    default: the library owns the request's shape, the service only spells it as JSON. ``overrides`` gives the wire
    type of a field whose library type is not plain ``int`` (a nested model, a range string); a field with neither
    fails here, at import, so a field added to the library cannot be missing on the wire."""
    hints = get_type_hints(source)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(source):
        if not field.init:
            continue
        annotation = overrides[field.name] if field.name in overrides else WIRE_TYPES.get(hints[field.name])
        if annotation is None:
            raise TypeError(f"{source.__name__}.{field.name}: no wire type for {hints[field.name]}; add one here")
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=cast("Callable[[], Any]", annotation))  # a nested body's own defaults
        else:
            default = ...
        fields[field.name] = (annotation, default)
    model: type[Strict] = create_model(name, __base__=Strict, __doc__=doc, __module__=__name__, **fields)
    return model


if TYPE_CHECKING:

    class _Fields(Strict):
        """What a type checker sees of a generated body model: its fields are the library's, made at run time."""

        def __init__(self, **data: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

    SizesBody = _Fields
    ClusterBody = _Fields
    ModelBody = _Fields
    _TopologyFields = _Fields
else:
    SizesBody = wire_model(
        "SizesBody",
        ParallelismSizes,
        'Requested degrees; unset ones are 1, and ``dp_size: null`` means "infer from the world size".',
    )
    ClusterBody = wire_model("ClusterBody", ClusterShape, ClusterShape.__doc__ or "")
    ModelBody = wire_model("ModelBody", ModelShape, ModelShape.__doc__ or "")
    _TopologyFields = wire_model(
        "TopologyFields",
        TopologyRequest,
        "",
        strategy=Annotated[str, Field(max_length=64, examples=["fsdp2"])],
        sizes=SizesBody,
        nnodes=Int | NodeRange | None,
        ranks=list[Int] | None,
        cluster=ClusterBody | None,
        model=ModelBody | None,
    )

#: The fields of ``TopologyRequest``: what ``TopologyBody.to_request`` hands over (subclasses add their own).
REQUEST_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TopologyRequest) if f.init)


class TopologyBody(_TopologyFields):
    """One topology: a strategy, a world (``world_size``, ``nnodes`` × ``nproc_per_node`` or ``ranks``) and sizes.
    Its fields are ``TopologyRequest``'s (``wire_model``), so whatever the library's client sends parses here."""

    if TYPE_CHECKING:  # pydantic makes __init__ from the fields; a type checker sees none of them

        def __init__(self, **data: Any) -> None: ...

    def checked_request(self, settings: Settings, *, field_prefix: str = "") -> TopologyRequest:
        """The planner's request, or ``InvalidFields`` (422) naming every field of a request without a world or
        beyond the service's limits (``Limits``, checked before any arithmetic, and here rather than in the
        schema so each error names its field; ``field_prefix`` places the body inside a larger one, e.g.
        ``request.``)."""
        request = self.to_request()
        errors = self._world_errors() + settings.limits.errors(request)
        if errors:
            raise InvalidFields([(field_prefix + field, detail) for field, detail in errors])
        return request

    def _world_errors(self) -> list[tuple[str, str]]:
        errors = []
        if self.world_size is None and self.nnodes is None and self.ranks is None:
            errors.append(("world_size", "give world_size, or nnodes with nproc_per_node, or ranks"))
        if self.nnodes is not None and self.nproc_per_node is None:
            errors.append(("nproc_per_node", "nnodes needs nproc_per_node"))
        return errors

    def to_request(self) -> TopologyRequest:
        # vars(): the fields of these flat models as they were parsed (model_dump costs ten times more, per request)
        given = vars(self)
        values = {name: given[name] for name in REQUEST_FIELDS}
        values["sizes"] = ParallelismSizes(**vars(self.sizes))
        if self.ranks is not None:
            values["ranks"] = tuple(self.ranks)
        if self.cluster is not None:
            values["cluster"] = ClusterShape(**vars(self.cluster))
        if self.model is not None:
            values["model"] = ModelShape(**vars(self.model))
        return TopologyRequest(**values)


EXAMPLES: dict[str, dict[str, Any]] = {
    "fsdp2_tp_pp": {
        "summary": "FSDP2, 64 ranks, tp 8 × pp 2 (dp inferred)",
        "value": {
            "strategy": "fsdp2",
            "world_size": 64,
            "sizes": {"tp_size": 8, "pp_size": 2, "dp_size": None, "dp_replicate_size": None},
            "cluster": {"gpus_per_node": 8, "nvlink_domain": None},
            "model": {"num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32},
        },
    },
    "elastic_nodes": {
        "summary": "Elastic job: 2 to 8 nodes of 8 GPUs, HSDP with tp 4",
        "value": {"strategy": "fsdp2", "nnodes": "2:8", "nproc_per_node": 8, "sizes": {"tp_size": 4}},
    },
    "invalid": {
        "summary": "Invalid: tp 3 does not divide 64 ranks (200, valid=false, with suggestions)",
        "value": {"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 3}},
    },
    "moe": {
        "summary": "MoE: 128 ranks, ep 8, on 4 NVL72 racks",
        "value": {
            "strategy": "fsdp2",
            "world_size": 128,
            "sizes": {"tp_size": 2, "ep_size": 8},
            "cluster": {"gpus_per_node": 4, "nvlink_domain": 72},
        },
    },
}


# ---------------------------------------------------------------------------------------------- responses
class ProblemOut(BaseModel):
    code: str
    severity: Literal["error", "warning"]
    fields: list[str]
    message: str
    hint: str


class SuggestedSizes(BaseModel):
    tp_size: int
    pp_size: int
    cp_size: int
    ep_size: int
    dp_size: int | None
    dp_replicate_size: int | None


class SuggestionOut(BaseModel):
    sizes: SuggestedSizes
    reason: str


class AxisLayoutOut(BaseModel):
    size: int
    sizes: list[int]
    strides: list[int]


class MeshOut(BaseModel):
    axes: list[str]
    shape: list[int]
    flattened: dict[str, list[str]] | None = None


class KwargsOut(BaseModel):
    parallelize: dict[str, Any]
    pipeline: dict[str, Any]


class PlanOut(BaseModel):
    """The compact layout: groups are computable from ``layouts``; ``groups`` only with ``?groups=true``."""

    strategy: str
    world_size: int
    ranks: list[int] | None
    sizes: dict[str, int]
    device_mesh: MeshOut | None
    moe_mesh: MeshOut | None
    layouts: dict[str, AxisLayoutOut]
    kwargs: KwargsOut
    fingerprint: str
    cluster: dict[str, Any] | None = None
    groups: dict[str, list[list[int]]] | None = None


class WorldSizeOut(BaseModel):
    world_size: int
    nnodes: int
    valid: bool
    problems: list[ProblemOut]


class ValidationReportOut(BaseModel):
    valid: bool
    problems: list[ProblemOut]
    warnings: list[ProblemOut]
    suggestions: list[SuggestionOut]
    plan: PlanOut | None
    world_sizes: list[WorldSizeOut] | None = None


class GroupLayoutOut(BaseModel):
    """A group of more than 4,096 ranks: member ``i`` is ``start + Σ c_k·strides[k]`` for the row-major
    coordinates ``c`` of ``i`` over ``sizes``."""

    start: int
    sizes: list[int]
    strides: list[int]


class RankViewOut(BaseModel):
    rank: int
    coordinates: dict[str, int]
    groups: dict[str, list[int] | GroupLayoutOut]
