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
from enum import Enum
from types import MappingProxyType


class Tier(str, Enum):
    NODE = "node"
    NVLINK_DOMAIN = "nvlink_domain"
    LEAF = "leaf"
    SPINE = "spine"

    def __str__(self) -> str:
        return self.value


#: Fastest first; crossing counts are reported in this order.
TIERS: tuple[Tier, ...] = (Tier.NODE, Tier.NVLINK_DOMAIN, Tier.LEAF, Tier.SPINE)
TIER_NAMES: tuple[str, ...] = tuple(t.value for t in TIERS)

#: Node labels a Kubernetes scheduler (Kueue TAS) would use for each tier when the topology names none.
DEFAULT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "node": "kubernetes.io/hostname",
        "nvlink_domain": "nvidia.com/gpu.clique",
        "leaf": "cloud.google.com/gce-topology-subblock",
        "spine": "cloud.google.com/gce-topology-block",
    }
)


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    gpus: int
    nvlink_domain: str | None = None
    leaf: str | None = None
    spine: str | None = None

    def value(self, tier: Tier | str) -> str | None:
        """The unit name at ``tier`` as given (``None`` when missing); the node's own name at tier node."""
        tier = Tier(tier)
        if tier is Tier.NODE:
            return self.name
        value: str | None = getattr(self, tier.value)
        return value

    def unit(self, tier: Tier | str) -> str:
        """The unit this node belongs to at ``tier``; a missing value is a unit of its own."""
        value = self.value(tier)
        return value if value is not None else f"\x00{Tier(tier).value}:{self.name}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "gpus": self.gpus,
            "nvlink_domain": self.nvlink_domain,
            "leaf": self.leaf,
            "spine": self.spine,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], where: str = "node") -> Node:
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

    def label(self, tier: Tier | str) -> str:
        tier = Tier(tier).value
        return self.labels.get(tier) or DEFAULT_LABELS[tier]

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
    def from_dict(cls, data: Mapping[str, object]) -> Topology:
        """Read ``{"nodes": [...]}``; every malformed entry is reported at once, naming its index."""
        if not isinstance(data, Mapping) or not isinstance(data.get("nodes"), list):
            raise ValueError('topology: expected {"nodes": [{"name": str, "gpus": int, ...}, ...]}')
        nodes: list[Node] = []
        errors: list[str] = []
        entries: list[Mapping[str, object]] = data["nodes"]  # type: ignore[assignment]
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
