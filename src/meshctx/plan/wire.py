"""Reading a wire dict (``to_dict()`` output sent back) into typed values, once, at the edge.

Each reader checks one value and names the field when it is not what ``to_dict`` writes, so the ``from_dict``
parsers build typed values from what they read. Numbers are read as ``int()`` reads them (``4``, ``"4"``).
"""

from __future__ import annotations

from collections.abc import Mapping


def _wrong(where: str, expected: str, value: object) -> ValueError:
    """The error for a value of a wire dict that is not what ``to_dict`` writes there."""
    return ValueError(f"{where} must be {expected}, got {value!r}")


def mapping_of(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _wrong(where, "an object", value)
    return value


def list_of(value: object, where: str) -> list[object] | tuple[object, ...]:
    if not isinstance(value, (list, tuple)):
        raise _wrong(where, "a list", value)
    return value


def int_of(value: object, where: str) -> int:
    if isinstance(value, (int, str, float)):
        try:
            return int(value)
        except (ValueError, OverflowError):
            pass
    raise _wrong(where, "an integer", value)


def optional_int(value: object, where: str) -> int | None:
    return None if value is None else int_of(value, where)


def int_list(value: object, where: str) -> list[int]:
    return [int_of(item, f"{where}[{i}]") for i, item in enumerate(list_of(value, where))]


def str_list(value: object, where: str) -> list[str]:
    return [str(item) for item in list_of(value, where)]
