"""Read a job's strategy, sizes and model shape from string key/values (Kubernetes annotations,
SkyPilot task envs): every unreadable value is reported, none is guessed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meshctx.plan import ModelShape
from meshctx.plan.model import MODEL_FIELDS
from meshctx.plan.sizes import SIZE_FIELDS, ParallelismSizes


@dataclass(frozen=True)
class JobSizes:
    strategy: str
    sizes: ParallelismSizes
    model: ModelShape | None
    errors: list[str] = field(default_factory=list)


def positive_int(value: object) -> int | None:
    """``8`` or ``"8"`` → 8; anything else (bools, "auto", 0, "8.0") → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 1 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number >= 1 else None
    return None


def read_job_sizes(values: Mapping[str, object], strategy_key: str, key_of: Mapping[str, str]) -> JobSizes:
    """``key_of`` maps each size and model field name to the key it is read from."""
    errors: list[str] = []
    numbers: dict[str, int] = {}
    for name in (*SIZE_FIELDS, *MODEL_FIELDS):
        key = key_of.get(name)
        if key is None or key not in values:
            continue
        number = positive_int(values[key])
        if number is None:
            errors.append(f"{key} must be an integer ≥ 1, got {values[key]!r}")
        else:
            numbers[name] = number
    strategy = values.get(strategy_key, "fsdp2")
    if not isinstance(strategy, str):
        errors.append(f"{strategy_key} must be a strategy name, got {strategy!r}")
        strategy = "fsdp2"
    sizes = ParallelismSizes(**{k: v for k, v in numbers.items() if k in SIZE_FIELDS})
    model_values = {k: v for k, v in numbers.items() if k in MODEL_FIELDS}
    return JobSizes(strategy, sizes, ModelShape(**model_values) if model_values else None, errors)
