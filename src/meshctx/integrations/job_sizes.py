"""Strict reading of counts and of a job's strategy, sizes and model shape from string key/values
(Kubernetes annotations, SkyPilot task envs): every unreadable value is reported, none is guessed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import FieldProblem
from ..plan.model import MODEL_FIELDS, ModelShape
from ..plan.sizes import SIZE_FIELDS, ParallelismSizes
from .limits import MAX_INT as MAX_COUNT  # the largest count read from a document: nothing bigger reaches arithmetic

#: ASCII digits only: ``str.isdigit()`` also accepts ``"²"``, which ``int()`` then refuses.
_DIGITS = re.compile(r"[0-9]{1,10}")
_SHOWN = 40


def shown(value: object) -> str:
    """A short, safe rendering of a value for a message (5,000-digit numbers and long strings are cut)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 1]}… ({len(text)} characters)"


def parse_count(value: object, name: str) -> int:
    """``8`` or ``"8"`` → 8; anything else (bools, floats, ``"²"``, 0, more than ``MAX_COUNT``) raises
    ``FieldProblem`` naming ``name``."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not 1 <= number <= MAX_COUNT:
        raise FieldProblem(name, f"must be an integer from 1 to {MAX_COUNT}, got {shown(value)}")
    return number


@dataclass(frozen=True)
class JobSizes:
    strategy: str
    sizes: ParallelismSizes
    model: ModelShape | None
    #: Where each value was read, by request field (``sizes.tp_size`` → ``meshctx.io/tp-size``).
    sources: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def read_job_sizes(values: Mapping[str, object], strategy_key: str, key_of: Mapping[str, str]) -> JobSizes:
    """``key_of`` maps each size and model field name to the key it is read from."""
    errors: list[str] = []
    numbers: dict[str, int] = {}
    sources = {"strategy": strategy_key}
    for name in (*SIZE_FIELDS, *MODEL_FIELDS):
        key = key_of.get(name)
        if key is None or key not in values:
            continue
        try:
            numbers[name] = parse_count(values[key], key)
        except FieldProblem as problem:
            errors.append(str(problem))
        sources[("sizes." if name in SIZE_FIELDS else "model.") + name] = key
    strategy = values.get(strategy_key, "fsdp2")
    if not isinstance(strategy, str) or not 1 <= len(strategy) <= 64:
        errors.append(f"{strategy_key} must be a strategy name, got {shown(strategy)}")
        strategy = "fsdp2"
    sizes = ParallelismSizes(**{k: v for k, v in numbers.items() if k in SIZE_FIELDS})
    model_values = {k: v for k, v in numbers.items() if k in MODEL_FIELDS}
    return JobSizes(strategy, sizes, ModelShape(**model_values) if model_values else None, sources, errors)


#: Digits beyond which a number in a document is not turned into an ``int`` at all (no count is that long;
#: Python refuses to convert 4,300+ digits with a ``ValueError``, and converting is quadratic below that).
LONG_DIGITS = 30


def bounded_int(text: str) -> int | str:
    """``json.loads(parse_int=...)``: the int, or for a longer literal a string saying so, which every
    count reader then refuses by name."""
    digits = len(text.lstrip("+-"))
    return int(text) if digits <= LONG_DIGITS else f"<an integer of {digits} digits>"
