"""YAML text for rendered documents, block style, keys in the order they were built.

Written here (stdlib only) so a rendering is the same YAML whether or not PyYAML is installed: the output of
``meshctx render trainjob`` must not depend on which extras happen to be present. The documents are plain
JSON values (dicts, lists, strings, numbers, booleans, null); strings YAML would read as something else are
double-quoted (JSON escapes are valid YAML), multi-line strings are literal blocks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_PLAIN = re.compile(r"[A-Za-z_/$][A-Za-z0-9_./:=$+-]*(?: [A-Za-z0-9_./:=$+-]+)*")
_SPECIAL = frozenset(
    {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", ".inf", ".nan"}
)  # YAML 1.1 booleans and nulls, any case


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _SPECIAL and not text.endswith(":") and ": " not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _block(text: str, indent: str) -> str | None:
    """A literal block for a multi-line string, or ``None`` when one cannot hold it exactly."""
    if "\n" not in text or text.startswith((" ", "\n")) or "\r" in text or "\t" in text:
        return None
    body = text[:-1] if text.endswith("\n") else text
    if body.endswith("\n") or any(line.endswith(" ") for line in body.split("\n")):
        return None
    chomp = "" if text.endswith("\n") else "-"
    lines = [f"{indent}{line}" if line else "" for line in body.split("\n")]
    return f"|{chomp}\n" + "\n".join(lines)


def _lines(value: dict[object, object] | list[object], indent: str) -> list[str]:
    """``value`` as block lines at ``indent``."""
    out: list[str] = []
    items: Iterable[tuple[object, object]] = (
        value.items() if isinstance(value, dict) else ((None, item) for item in value)
    )
    for key, item in items:
        lead = f"{indent}{_scalar(key)}:" if key is not None else f"{indent}-"
        if isinstance(item, (dict, list)) and item:
            if key is None and isinstance(item, dict):
                inner = _lines(item, indent + "  ")
                out.append(f"{lead} {inner[0].lstrip()}")
                out.extend(inner[1:])
            else:
                out.append(lead)
                out.extend(_lines(item, indent + "  "))
        elif isinstance(item, (dict, list)):
            out.append(f"{lead} {'{}' if isinstance(item, dict) else '[]'}")
        elif isinstance(item, str) and (block := _block(item, indent + "  ")) is not None:
            out.append(f"{lead} {block}")
        else:
            out.append(f"{lead} {_scalar(item)}")
    return out


def yaml_text(doc: object) -> str:
    """``doc`` as block-style YAML (a scalar as a one-line document)."""
    if isinstance(doc, (dict, list)) and doc:
        return "\n".join(_lines(doc, "")) + "\n"
    return (("{}" if isinstance(doc, dict) else "[]") if isinstance(doc, (dict, list)) else _scalar(doc)) + "\n"
