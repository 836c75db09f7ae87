"""Checks on the names and labels clients choose, so they are safe in URLs, SQL JSON paths and logs."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import InvalidInputError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
MAX_LABELS = 64
MAX_LABEL_VALUE = 256
NAME_RULE = "1-128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"


def name_error(field: str, value: object) -> tuple[str, str] | None:
    if isinstance(value, str) and _NAME.fullmatch(value):
        return None
    return field, f"{value!r} is not a valid name; use {NAME_RULE}."


def label_errors(labels: Mapping[str, object], field: str = "labels") -> list[tuple[str, str]]:
    errors = []
    if len(labels) > MAX_LABELS:
        errors.append((field, f"{len(labels)} labels given; at most {MAX_LABELS} are allowed."))
    for key, value in labels.items():
        if not (isinstance(key, str) and _LABEL_KEY.fullmatch(key)):
            errors.append(
                (f"{field}.{key}", "label keys are 1-63 letters, digits, '.', '_', '/' or '-', starting alphanumeric.")
            )
        elif not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
            errors.append((f"{field}.{key}", f"label values are strings of at most {MAX_LABEL_VALUE} characters."))
    return errors


def check(*errors: tuple[str, str] | None, more: list[tuple[str, str]] | None = None) -> None:
    """Raise one ``InvalidInputError`` listing every error given (``None`` entries are fine)."""
    found = [e for e in errors if e is not None] + (more or [])
    if found:
        raise InvalidInputError(found)
