"""CuTe-style layouts: where one axis's group sits among the mesh positions.

A layout is a tuple of modes ``(size, stride)`` listed outermost first, the order torch's
``_MeshLayout`` uses. The group that contains mesh position 0 is every ``sum(c_i * stride_i)``;
every other group of the axis is a translate of it. Layouts are normalized like torch's
``_FlatLayout`` (size-1 modes dropped, contiguous modes merged), so two layouts that select the
same positions compare equal, and a plan's layouts can be compared with torch's own bookkeeping.

All layouts built by the planner are *digit-aligned*: each mode is a run of row-major mesh
dimensions, so the coordinate of position ``p`` in mode ``i`` is ``(p // stride_i) % size_i``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from math import prod

from .wire import int_list


@dataclass(frozen=True, slots=True)
class AxisLayout:
    sizes: tuple[int, ...]
    strides: tuple[int, ...]

    @classmethod
    def of(cls, sizes: tuple[int, ...] | list[int], strides: tuple[int, ...] | list[int]) -> AxisLayout:
        """A normalized layout: size-1 modes dropped, adjacent contiguous modes merged."""
        if len(sizes) != len(strides):
            raise ValueError(f"layout sizes {tuple(sizes)} and strides {tuple(strides)} differ in length")
        modes: list[tuple[int, int]] = []
        for size, stride in zip(sizes, strides):
            if size == 1:
                continue
            if modes and modes[-1][1] == size * stride:
                outer_size, _ = modes.pop()
                modes.append((outer_size * size, stride))
            else:
                modes.append((size, stride))
        return cls(tuple(m[0] for m in modes), tuple(m[1] for m in modes))

    @property
    def size(self) -> int:
        return prod(self.sizes)

    def offsets(self) -> list[int]:
        """Positions of the group that contains position 0, in the group's own (row-major) order."""
        if not self.sizes:
            return [0]
        return [sum(c * s for c, s in zip(coord, self.strides)) for coord in product(*(range(n) for n in self.sizes))]

    def local_index(self, position: int) -> int:
        """Index of ``position`` inside its group (its coordinate along this axis)."""
        index = 0
        for size, stride in zip(self.sizes, self.strides):
            index = index * size + (position // stride) % size
        return index

    def base(self, position: int) -> int:
        """The position at index 0 of the group that contains ``position``."""
        return position - sum(((position // stride) % size) * stride for size, stride in zip(self.sizes, self.strides))

    def group_positions(self, position: int) -> list[int]:
        base = self.base(position)
        return [base + offset for offset in self.offsets()]

    def complement(self, total: int) -> AxisLayout:
        """The layout whose offsets are the bases of all groups in a space of ``total`` positions."""
        modes = sorted(zip(self.strides, self.sizes))
        covered = 1
        gaps: list[tuple[int, int]] = []
        for stride, size in modes:
            if stride % covered:
                raise ValueError(f"layout {self} is not digit-aligned")
            if stride > covered:
                gaps.append((stride // covered, covered))
            covered = size * stride
        if total % covered:
            raise ValueError(f"layout {self} does not tile {total} positions")
        if total > covered:
            gaps.append((total // covered, covered))
        gaps.reverse()
        return AxisLayout.of(tuple(g[0] for g in gaps), tuple(g[1] for g in gaps))

    def all_groups(self, total: int) -> list[list[int]]:
        """Every group over ``total`` positions, ordered by their first position."""
        offsets = self.offsets()
        bases = sorted(self.complement(total).offsets())
        return [[base + offset for offset in offsets] for base in bases]

    def to_dict(self) -> dict[str, object]:
        return {"size": self.size, "sizes": list(self.sizes), "strides": list(self.strides)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object], where: str = "layout") -> AxisLayout:
        """Read back ``to_dict()``; ``where`` names the layout in errors."""
        sizes = tuple(int_list(data["sizes"], f"{where}.sizes"))
        strides = tuple(int_list(data["strides"], f"{where}.strides"))
        layout = cls.of(sizes, strides)
        if "size" in data and data["size"] != layout.size:
            raise ValueError(f"layout size {data['size']} does not match sizes {list(sizes)}")
        return layout

    def __str__(self) -> str:
        if not self.sizes:
            return "1:0"
        return f"({','.join(map(str, self.sizes))}):({','.join(map(str, self.strides))})"
