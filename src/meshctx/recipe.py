"""The ``distributed:`` section of a training recipe (YAML or dict) as typed meshctx objects.

Keys: ``strategy`` (default ``fsdp2``; aliases allowed), the size keys of ``ParallelismSizes``, the options
of the chosen strategy's config dataclass, and the ``pipeline`` and ``moe`` blocks. Those two blocks configure
NeMo's pipeline schedule and MoE layers, not the mesh, so they are kept as plain dicts (checked to be mappings).
``none`` (any case) is accepted for ``dp_size`` and ``dp_replicate_size``, as NeMo's YAML recipes write it.
Every problem (unknown key with a did-you-mean, wrong type, option of another strategy) is reported at once.
Value checks (sizes against the world) are the planner's job: ``DistributedRecipe.plan`` / ``build``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import STRATEGY_CONFIGS, StrategyConfig
from .errors import FieldErrors
from .plan import MeshPlan, plan_mesh
from .plan.arith import is_integer
from .plan.sizes import SIZE_BY_NAME, SIZE_FIELDS, ParallelismSizes
from .plan.strategies import STRATEGY_ALIASES, Strategy, resolve_strategy

if TYPE_CHECKING:
    from .runtime.context import MeshContext

BLOCKS = ("pipeline", "moe")


class RecipeError(FieldErrors):
    """A ``distributed:`` section that cannot be read; ``errors`` holds ``(key, message)`` for every problem."""

    def describe(self) -> str:
        lines = "\n".join(f"  - {f'distributed.{key}' if key else 'recipe'}: {message}" for key, message in self.errors)
        return f"invalid distributed section: {len(self.errors)} problem(s)\n{lines}"


@dataclass(frozen=True, slots=True)
class DistributedRecipe:
    strategy: Strategy
    strategy_config: StrategyConfig
    sizes: ParallelismSizes
    pipeline: dict[str, Any] | None = None
    moe: dict[str, Any] | None = None

    def plan(self, world_size: int, *, ranks: Sequence[int] | None = None) -> MeshPlan:
        return plan_mesh(self.strategy_config, self.sizes, world_size=world_size, ranks=ranks)

    def build(self, **kwargs: Any) -> MeshContext:
        """``MeshContext.build`` for this recipe (needs torch and an initialized process group)."""
        from .runtime.context import MeshContext

        return MeshContext.build(self.strategy_config, self.sizes, **kwargs)


def _option_fields(strategy: Strategy) -> dict[str, Any]:
    cls = STRATEGY_CONFIGS[strategy]
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _type_ok(value: object, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, Mapping)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    names = sorted(candidates)
    close = [n for n in names if n.startswith(word.lower())] or difflib.get_close_matches(word, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_distributed(section: Mapping[str, Any] | None) -> DistributedRecipe:
    """Read a ``distributed:`` section; raises ``RecipeError`` listing every problem."""
    errors: list[tuple[str, str]] = []
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise RecipeError([("", f"must be a mapping of keys to values, got {type(section).__name__}")])

    raw_strategy = section.get("strategy", "fsdp2")
    strategy = resolve_strategy(raw_strategy) if isinstance(raw_strategy, str) else None
    if strategy is None:
        hint = _did_you_mean(str(raw_strategy), STRATEGY_ALIASES)
        errors.append(("strategy", f"unknown strategy {raw_strategy!r}{hint} Choose one of {sorted(STRATEGY_ALIASES)}"))
    options = _option_fields(strategy) if strategy else {}
    other_options = {name: s for s in Strategy if s is not strategy for name in _option_fields(s)}
    known = {"strategy", *SIZE_FIELDS, *BLOCKS, *options}

    sizes: dict[str, int | None] = {}
    chosen: dict[str, Any] = {}
    blocks: dict[str, dict[str, Any] | None] = {}
    for key, value in section.items():
        key = str(key)
        if key == "strategy":
            continue
        if key in SIZE_FIELDS:
            optional = SIZE_BY_NAME[key].optional
            if optional and (value is None or (isinstance(value, str) and value.lower() == "none")):
                sizes[key] = None
            elif is_integer(value):
                sizes[key] = value
            else:
                allowed = "an integer or none" if optional else "an integer"
                errors.append((key, f"must be {allowed}, got {value!r} ({type(value).__name__})"))
        elif key in BLOCKS:
            if value is not None and not isinstance(value, Mapping):
                errors.append((key, f"must be a mapping of {key} settings, got {type(value).__name__}"))
            else:
                blocks[key] = dict(value) if value is not None else None
        elif key in options:
            if _type_ok(value, options[key]):
                chosen[key] = value
            else:
                errors.append((key, f"must be {_type_name(options[key])}, got {value!r} ({type(value).__name__})"))
        elif key in other_options:
            if strategy is not None:  # with an unknown strategy, the options cannot be judged
                errors.append((key, f"is an option of strategy {other_options[key].value}, not of {strategy.value}"))
        else:
            errors.append((key, f"unknown key{_did_you_mean(key, known | set(other_options))}"))
    if errors or strategy is None:
        raise RecipeError(errors)
    return DistributedRecipe(
        strategy=strategy,
        strategy_config=STRATEGY_CONFIGS[strategy](**chosen),
        sizes=ParallelismSizes.of(sizes),
        pipeline=blocks.get("pipeline"),
        moe=blocks.get("moe"),
    )


def load_recipe(source: str | Path | Mapping[str, Any]) -> DistributedRecipe:
    """The ``distributed:`` section of a whole recipe: a mapping, a YAML file (``Path``) or YAML text (``str``)."""
    if isinstance(source, Mapping):
        document: Any = source
    else:
        try:
            import yaml
        except ImportError as err:  # pragma: no cover - pyyaml ships with the dev and service extras
            raise ImportError("reading YAML recipes needs pyyaml: pip install pyyaml") from err
        text = source.read_text() if isinstance(source, Path) else source
        document = yaml.safe_load(text)
    if not isinstance(document, Mapping):
        raise RecipeError(
            [("", f"the recipe must be a mapping with a distributed: section, got {type(document).__name__}")]
        )
    return parse_distributed(document.get("distributed"))


def read_recipe_file(path: str | Path) -> DistributedRecipe:
    """``load_recipe`` of a file named on a command line: a missing or unreadable file, or text that is not YAML,
    is a ``RecipeError`` saying so (YAML aliases are refused, as everywhere meshctx reads YAML)."""
    try:
        import yaml

        text = Path(path).read_text()
    except ImportError as err:  # pragma: no cover - pyyaml ships with the dev and service extras
        raise RecipeError([("", "reading YAML recipes needs pyyaml: pip install pyyaml")]) from err
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError([("", f"cannot read {path}: {err}")]) from None
    if "*" in text and "&" in text:
        try:
            events = list(yaml.parse(text))
        except yaml.YAMLError:
            events = []
        if any(isinstance(e, yaml.AliasEvent) for e in events):
            raise RecipeError([("", f"{path} uses YAML aliases (*name); write the values out")])
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecipeError([("", f"{path} is not YAML: {str(err).splitlines()[0]}")]) from None
    if not isinstance(document, Mapping) or "distributed" not in document:
        found = f"keys {sorted(map(str, document))[:8]}" if isinstance(document, Mapping) else type(document).__name__
        raise RecipeError([("", f"{path} has no distributed: section (found {found})")])
    return parse_distributed(document["distributed"])
