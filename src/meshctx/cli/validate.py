"""``meshctx validate``: check sizes against a world size (exit 0 valid, 1 invalid), offline or with ``--server``."""

from __future__ import annotations

import argparse
from typing import Any

from ..plan.sizes import SIZE_BY_NAME, SIZE_FIELDS
from .common import (
    EXIT_INVALID,
    EXIT_VALID,
    UsageError,
    add_topology_args,
    ask_server,
    print_json,
    request_from_args,
)
from .text import report_text


def add_validate_command(commands: Any) -> None:
    validate = commands.add_parser("validate", help="check sizes against a world size (exit 0 valid, 1 invalid)")
    add_topology_args(validate)
    validate.add_argument(
        "--recipe",
        metavar="FILE",
        help="a training recipe YAML (NeMo's): its distributed: section gives the strategy and sizes",
    )
    validate.set_defaults(handler=cmd_validate)


def apply_recipe(args: argparse.Namespace) -> None:
    """The strategy and sizes of ``--recipe``'s ``distributed:`` section; a flag that says otherwise is a usage
    error naming both values, as is a section that cannot be read (every problem listed)."""
    from ..recipe import RecipeError, read_recipe_file

    try:
        recipe = read_recipe_file(args.recipe)
    except RecipeError as err:
        raise UsageError(f"--recipe {args.recipe}: {err.describe()}") from None
    wanted = {"strategy": recipe.strategy.value} | {name: getattr(recipe.sizes, name) for name in SIZE_FIELDS}
    for name, value in wanted.items():
        given = getattr(args, name)
        default = "fsdp2" if name == "strategy" else (None if SIZE_BY_NAME[name].optional else 1)
        if given != default and given != value:
            flag = "--strategy" if name == "strategy" else SIZE_BY_NAME[name].flag
            raise UsageError(f"{flag} {given} contradicts the recipe's {name}: {value}; drop {flag} or edit the recipe")
        setattr(args, name, value)


def cmd_validate(args: argparse.Namespace) -> int:
    if args.recipe is not None:
        apply_recipe(args)
    request = request_from_args(args)
    if args.server:
        report = ask_server(args, lambda client: client.validate(request))
    else:
        report = request.validate().to_dict()
    if args.json:
        print_json(report)
    else:
        print(report_text(request.to_dict(), report))
    return EXIT_VALID if report["valid"] else EXIT_INVALID
