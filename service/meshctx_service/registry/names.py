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
_FINGERPRINT = re.compile(r"[\x21-\x7e]{1,80}")


def is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def storable(value: str) -> bool:
    """Text both databases store and compare as given: no NUL (PostgreSQL refuses it in text and JSON), no
    lone surrogate (not UTF-8), no other control character."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def fingerprint_error(value: object) -> tuple[str, str] | None:
    if isinstance(value, str) and _FINGERPRINT.fullmatch(value):
        return None
    detail = "expected the 'sha256:...' string from MeshPlan.fingerprint() (1-80 printable ASCII characters)."
    return "fingerprint", detail


def name_error(field: str, value: object) -> tuple[str, str] | None:
    if is_name(value):
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
        elif not storable(value):
            errors.append((f"{field}.{key}", "label values may not hold NUL, control characters or lone surrogates."))
    return errors


def check(*errors: tuple[str, str] | None, more: list[tuple[str, str]] | None = None) -> None:
    """Raise one ``InvalidInputError`` listing every error given (``None`` entries are fine)."""
    found = [e for e in errors if e is not None] + (more or [])
    if found:
        raise InvalidInputError(found)
