"""The viewer form's vocabulary, read from the library's own tables and served as ``GET /ui/meta.json``.

The page builds its strategy choices, size fields and model-shape fields from this at start-up, so a strategy or
field added to the library appears in the form without a second copy of the list in HTML or JavaScript.
"""

from __future__ import annotations

from functools import cache

#: What leaving a size field blank means, for the fields whose library default is ``None``.
BLANK_MEANS: dict[str, str] = {"dp_size": "inferred"}
BLANK_DEFAULT = "1"


@cache
def ui_meta() -> dict[str, object]:
    """Every strategy (its aliases, the size fields it cannot use beyond 1), every size field (its axis, its
    default, what a blank means) and every model-shape field, in the library's order."""
    # The one place the viewer reads library tables.
    from meshctx.plan.model import MODEL_FIELDS
    from meshctx.plan.sizes import SIZE_FIELDS, ParallelismSizes
    from meshctx.plan.strategies import RULES, STRATEGY_ALIASES, Strategy

    defaults = ParallelismSizes().to_dict()
    return {
        "strategies": [
            {
                "name": strategy.value,
                "aliases": sorted(a for a, s in STRATEGY_ALIASES.items() if s is strategy and a != strategy.value),
                "unsupported_sizes": list(RULES[strategy].unsupported),
            }
            for strategy in Strategy
        ],
        "sizes": [
            {
                "field": field,
                "axis": field.removesuffix("_size"),
                "default": defaults[field],
                "blank": BLANK_MEANS.get(field, BLANK_DEFAULT) if defaults[field] is None else None,
            }
            for field in SIZE_FIELDS
        ],
        "model_fields": list(MODEL_FIELDS),
    }
