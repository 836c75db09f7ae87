"""``docs/launch.md`` lists every render option with its flag, body field and default (the table is the source)."""

from __future__ import annotations

from pathlib import Path

from meshctx.launch.spec import RENDER_OPTIONS, OptionKind

DOC = (Path(__file__).resolve().parents[2] / "docs" / "launch.md").read_text()


def test_every_render_option_has_its_row() -> None:
    rows = {line.split("|")[2].strip(): line for line in DOC.splitlines() if line.startswith("| `-")}
    assert len(rows) == len(RENDER_OPTIONS)
    for option in RENDER_OPTIONS:
        key = "`command` (a list of strings)" if option.kind is OptionKind.ARGV else f"`{option.name}`"
        row = rows[key]
        assert f"`{option.flag}" in row, option.name
        default = " ".join(option.default) if option.kind is OptionKind.ARGV else option.default  # type: ignore[arg-type]
        assert (f"`{default}`" if default is not None else "| — |") in row, option.name
