"""The parallel degrees: what a user asks for (``ParallelismSizes``), what the planner resolves
(``ResolvedSizes``), and ONE table of the size fields from which every other spelling of them derives:
CLI flags, ``MESHCTX_*`` environment variables, ``meshctx.io/*`` annotations and JSON keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from .wire import int_of, optional_int

#: Kubernetes annotations of meshctx (``meshctx.io/tp-size``, ``meshctx.io/strategy``, ...) start with this.
ANNOTATION_PREFIX = "meshctx.io/"


@dataclass(frozen=True, slots=True)
class SizeField:
    """One size field; ``name`` is its Python attribute and JSON key, ``axis`` the mesh dimension it sets."""

    name: str
    axis: str
    help: str
    #: May be ``None`` (unset): dp is then inferred, dp_replicate counts as 1.
    optional: bool = False

    @property
    def flag(self) -> str:
        """``--tp``, ``--dp-replicate``."""
        return "--" + self.axis.replace("_", "-")

    @property
    def env(self) -> str:
        """``MESHCTX_TP_SIZE``: what a launched job and the SkyPilot policy read."""
        return "MESHCTX_" + self.name.upper()

    @property
    def annotation(self) -> str:
        """``meshctx.io/tp-size``: what the admission webhook reads."""
        return ANNOTATION_PREFIX + self.name.replace("_", "-")


#: Every size field, in the order of the wire format's ``sizes`` object.
SIZE_TABLE: tuple[SizeField, ...] = (
    SizeField("tp_size", "tp", "tensor-parallel degree (default 1)"),
    SizeField("pp_size", "pp", "pipeline stages (default 1)"),
    SizeField("cp_size", "cp", "context-parallel degree (default 1)"),
    SizeField("ep_size", "ep", "expert-parallel degree (default 1)"),
    SizeField("dp_size", "dp", "data-parallel degree (default: inferred from the world size)", optional=True),
    SizeField("dp_replicate_size", "dp_replicate", "HSDP replicas, fsdp2 only (default 1)", optional=True),
)
SIZE_FIELDS: tuple[str, ...] = tuple(f.name for f in SIZE_TABLE)
SIZE_BY_NAME: dict[str, SizeField] = {f.name: f for f in SIZE_TABLE}
#: The degrees of the model-parallel dimensions: never ``None``, 1 when unused.
DEGREE_FIELDS: tuple[str, ...] = tuple(f.name for f in SIZE_TABLE if not f.optional)


@dataclass(frozen=True, kw_only=True, slots=True)
class ParallelismSizes:
    """What the user asked for; ``None`` for ``dp_size`` means "infer from the world size"."""

    dp_size: int | None = None
    dp_replicate_size: int | None = None
    tp_size: int = 1
    pp_size: int = 1
    cp_size: int = 1
    ep_size: int = 1

    def to_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in SIZE_FIELDS}

    @classmethod
    def of(cls, values: Mapping[str, int | None]) -> ParallelismSizes:
        """The sizes named in ``values`` (a missing one takes its default); only dp and dp_replicate may be None."""
        unknown = sorted(set(values) - set(SIZE_FIELDS))
        if unknown:
            raise ValueError(f"unknown size fields {unknown}; the size fields are {list(SIZE_FIELDS)}")

        def degree(name: str) -> int:
            value = values.get(name, 1)
            if value is None:
                raise ValueError(f"{name} may not be None (only dp_size and dp_replicate_size may be unset)")
            return value

        return cls(
            dp_size=values.get("dp_size"),
            dp_replicate_size=values.get("dp_replicate_size"),
            tp_size=degree("tp_size"),
            pp_size=degree("pp_size"),
            cp_size=degree("cp_size"),
            ep_size=degree("ep_size"),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ParallelismSizes:
        """Read back ``to_dict()``."""
        return cls.of({name: optional_int(value, f"sizes.{name}") for name, value in data.items()})

    def changed(self, changes: Mapping[str, int | None]) -> ParallelismSizes:
        """These sizes with the fields named in ``changes`` set (``dataclasses.replace`` by field name)."""
        return ParallelismSizes.of({**self.to_dict(), **changes})


#: The same class under its other public name (docs/contract.md "Names").
ParallelSizes = ParallelismSizes


@dataclass(frozen=True, slots=True)
class ResolvedSizes:
    """Every degree of a valid topology, nothing left to infer; the names are the mesh axes'."""

    dp: int
    dp_replicate: int
    dp_shard: int
    tp: int
    pp: int
    cp: int
    ep: int
    ep_shard: int

    def to_dict(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in RESOLVED_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ResolvedSizes:
        return cls(*(int_of(data[key], f"sizes.{key}") for key in RESOLVED_FIELDS))

    def launch_values(self, *, elastic: bool) -> list[tuple[SizeField, int]]:
        """The sizes a launcher hands the job, dp last; an elastic job's dp is only known once it runs, so it
        is left out then."""
        fixed = [(f, getattr(self, f.axis)) for f in SIZE_TABLE if f.name != "dp_size"]
        return fixed if elastic else [*fixed, (SIZE_BY_NAME["dp_size"], self.dp)]


#: The fields of ``ResolvedSizes``, in order: its wire keys.
RESOLVED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ResolvedSizes))
