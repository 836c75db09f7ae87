"""``FrozenDict``: the read-only mapping a plan shares between values (layouts by axis, flattened axes).

A ``MappingProxyType`` cannot be pickled, deep-copied or taken through ``dataclasses.asdict``, so a plan holding
one could not travel with the context that carries it (NeMo's ``DistributedSetup`` deep-copies and pickles its
``MeshContext``). This is a plain ``dict`` for every reader (``json``, ``asdict``, ``pickle``, equality) whose
mutating methods raise, so a mapping cached and shared between plans cannot be changed through one of them.
"""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} is read-only; build a new mapping instead")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[type[FrozenDict[K, V]], tuple[dict[K, V]]]:
        # pickle and copy rebuild from a plain dict: they would otherwise fill the new object item by item
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


EMPTY: FrozenDict[Any, Any] = FrozenDict()
