"""The model's shape and the checks of the sizes against it: heads, experts, layers, sequence length and batch."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .arith import divisors, is_size, join_or, nearest
from .problems import Code, Problem


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelShape:
    """The model dimensions that constrain the sizes; names follow Hugging Face configs."""

    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    num_experts: int | None = None
    num_hidden_layers: int | None = None
    seq_length: int | None = None
    global_batch_size: int | None = None
    micro_batch_size: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


MODEL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ModelShape))


def model_problems(
    model: ModelShape, *, tp: int | None, pp: int | None, cp: int | None, ep: int | None, dp: int | None
) -> list[Problem]:
    """Every way the model cannot be split by these degrees; a degree that is ``None`` is unknown."""
    problems: list[Problem] = []
    value: dict[str, int] = {}
    for name in MODEL_FIELDS:
        raw = getattr(model, name)
        if raw is None:
            continue
        if is_size(raw):
            value[name] = raw
        else:
            problems.append(
                Problem.error(
                    Code.INVALID_SIZE,
                    (f"model.{name}",),
                    f"model.{name} must be an integer ≥ 1, got {raw!r}.",
                    f"Set model.{name} to the value in the model's config, or leave it out.",
                )
            )

    def split_check(name: str, degree: int | None, size_field: str, code: Code, what: str) -> None:
        count = value.get(name)
        if count is None or degree is None or count % degree == 0:
            return
        options = join_or(nearest(divisors(count), degree))
        problems.append(
            Problem.error(
                code,
                (f"model.{name}", size_field),
                f"{what} {count} cannot be split evenly over {size_field} {degree}.",
                f"Use a {size_field} that divides {count}, e.g. {options}.",
            )
        )

    split_check("num_attention_heads", tp, "tp_size", Code.HEADS_NOT_DIVISIBLE, "num_attention_heads")
    split_check("num_key_value_heads", tp, "tp_size", Code.KV_HEADS_NOT_DIVISIBLE, "num_key_value_heads")
    split_check("num_experts", ep, "ep_size", Code.EXPERTS_NOT_DIVISIBLE, "num_experts")

    layers = value.get("num_hidden_layers")
    if layers is not None and pp is not None and layers < pp:
        problems.append(
            Problem.error(
                Code.LAYERS_FEWER_THAN_PP,
                ("model.num_hidden_layers", "pp_size"),
                f"num_hidden_layers {layers} is fewer than pp_size {pp}: some pipeline stages would hold no layer.",
                f"Use pp_size ≤ {layers}.",
            )
        )

    seq = value.get("seq_length")
    if seq is not None and cp is not None and tp is not None and cp > 1 and seq % (2 * cp * tp):
        chunk = 2 * cp * tp
        padded = -(-seq // chunk) * chunk
        problems.append(
            Problem.error(
                Code.SEQ_LEN_NOT_DIVISIBLE,
                ("model.seq_length", "cp_size", "tp_size"),
                f"seq_length {seq} is not divisible by 2·cp·tp = 2·{cp}·{tp} = {chunk} (load-balanced context "
                "parallelism splits each sequence into 2·cp chunks, sharded over tp).",
                f"Pad sequences to a multiple of {chunk} (e.g. {padded}), or lower cp_size.",
            )
        )

    batch = value.get("global_batch_size")
    if batch is not None and dp is not None:
        micro = value.get("micro_batch_size", 1)
        step = micro * dp
        if batch % step:
            lower = max(step, batch // step * step)
            problems.append(
                Problem.error(
                    Code.BATCH_NOT_DIVISIBLE,
                    ("model.global_batch_size", "model.micro_batch_size", "dp_size"),
                    f"global_batch_size {batch} is not divisible by micro_batch_size·dp = {micro}·{dp} = {step}, "
                    "so gradient accumulation steps are not an integer.",
                    f"Use a global_batch_size that is a multiple of {step} ({join_or(sorted({lower, lower + step}))}).",
                )
            )
    return problems
