"""The cluster as placement sees it: nodes, their GPU count, and the units that contain them.

Tiers from fastest to slowest: node ⊂ nvlink_domain ⊂ leaf ⊂ spine. A node whose value for a tier is
missing (``None``) is a unit of its own at that tier: nothing is known to share that link with it, so a
group that spans it and another node counts as crossing that tier. This is the conservative reading;
an importer that knows better fills the value in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

#: The tiers, fastest first: node ⊂ nvlink_domain ⊂ leaf ⊂ spine (the one place their names are written);
#: ``UnitTierName`` are those above the node (a node's units, the ``Node`` fields a topology fills in).
UnitTierName = Literal["nvlink_domain", "leaf", "spine"]
TierName = Literal["node", UnitTierName]
#: Fastest first; crossing counts are reported in this order.
TIER_NAMES: tuple[TierName, ...] = get_args(TierName)

#: Node labels a Kubernetes scheduler (Kueue TAS) would use for each tier when the topology names none.
DEFAULT_LABELS: Mapping[str, str] = MappingProxyType(
    dict(
        zip(
            TIER_NAMES,
            (
                "kubernetes.io/hostname",
                "nvidia.com/gpu.clique",
                "cloud.google.com/gce-topology-subblock",
                "cloud.google.com/gce-topology-block",
            ),
        )
    )
)


def _tier(tier: str) -> str:
    if tier not in TIER_NAMES:
        raise ValueError(f"tier: one of {', '.join(TIER_NAMES)}, got {tier!r}")
    return tier


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    gpus: int
    nvlink_domain: str | None = None
    leaf: str | None = None
    spine: str | None = None

    def value(self, tier: str) -> str | None:
        """The unit name at ``tier`` as given (``None`` when missing); the node's own name at tier node."""
        if _tier(tier) == "node":
            return self.name
        value: str | None = getattr(self, tier)
        return value

    def unit(self, tier: str) -> str:
        """The unit this node belongs to at ``tier``; a missing value is a unit of its own."""
        value = self.value(tier)
        return value if value is not None else f"\x00{tier}:{self.name}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "gpus": self.gpus,
            "nvlink_domain": self.nvlink_domain,
            "leaf": self.leaf,
            "spine": self.spine,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "node") -> Node:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object with name and gpus, got {type(data).__name__}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.name: a non-empty string is required, got {name!r}")
        gpus = data.get("gpus")
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise ValueError(f"{where}.gpus: a positive integer is required, got {gpus!r} (node {name!r})")
        values: dict[str, str | None] = {}
        for tier in TIER_NAMES[1:]:
            value = data.get(tier)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where}.{tier}: a string or null is required, got {value!r} (node {name!r})")
            values[tier] = value or None
        return cls(name, gpus, values["nvlink_domain"], values["leaf"], values["spine"])


@dataclass(frozen=True, slots=True)
class Topology:
    """Every node of a cluster. ``labels`` names the node label behind each tier (Kubernetes importers
    set it); it only feeds the Kueue annotations of the launch section."""

    nodes: tuple[Node, ...]
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, nodes: Sequence[Node], labels: Mapping[str, str] | None = None) -> Topology:
        return cls(tuple(nodes), MappingProxyType(dict(labels or {})))

    def label(self, tier: str) -> str:
        return self.labels.get(tier) or DEFAULT_LABELS[_tier(tier)]

    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"nodes": [n.to_dict() for n in self.nodes]}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out

    @classmethod
    def from_dict(cls, data: object) -> Topology:
        """Read ``{"nodes": [...]}``; every malformed entry is reported at once, naming its index."""
        entries = data.get("nodes") if isinstance(data, Mapping) else None
        if not isinstance(data, Mapping) or not isinstance(entries, list):
            raise ValueError('topology: expected {"nodes": [{"name": str, "gpus": int, ...}, ...]}')
        nodes: list[Node] = []
        errors: list[str] = []
        for i, entry in enumerate(entries):
            try:
                nodes.append(Node.from_dict(entry, f"nodes[{i}]"))
            except ValueError as exc:
                errors.append(str(exc))
        duplicates = sorted(name for name, count in Counter(n.name for n in nodes).items() if count > 1)
        if duplicates:
            errors.append(f"nodes: names must be unique; repeated: {', '.join(duplicates[:10])}")
        labels = data.get("labels") or {}
        if not isinstance(labels, Mapping) or not all(
            k in TIER_NAMES and isinstance(v, str) for k, v in labels.items()
        ):
            errors.append(f"labels: expected a map from tier ({', '.join(TIER_NAMES)}) to a node label")
            labels = {}
        if errors:
            raise ValueError("invalid topology:\n  - " + "\n  - ".join(errors))
        return cls.of(nodes, labels)
