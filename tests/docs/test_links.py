"""Every relative link in README.md, docs/*.md and the OpenAPI text resolves to a file this repository ships
(and to a heading of it, when it names one); no text refers to a design document the repository does not ship."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from meshctx_service.app import create_app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
#: A repository path named in running text (the OpenAPI description cannot link to files).
NAMED_PATH = re.compile(r"\b((?:docs|deploy|bench|src|service|tests)/[\w./-]+\.\w+)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.MULTILINE)
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(heading) for heading in HEADING.findall(FENCED.sub("", path.read_text()))}


def _relative_links(path: Path) -> list[str]:
    text = FENCED.sub("", path.read_text())
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:|#|<", target)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in _relative_links(doc):
        file, _, anchor = target.partition("#")
        resolved = (doc.parent / file).resolve()
        if not resolved.is_file() or not resolved.is_relative_to(ROOT):
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with that anchor in {file}")
    assert not broken, f"{doc.relative_to(ROOT)}: {broken}"


def test_the_anchor_rule_matches_a_known_heading() -> None:
    assert "launcher-settings-meshctx-render-target" in _anchors(ROOT / "docs" / "deploy.md")


def test_every_path_the_openapi_text_names_is_shipped() -> None:
    text = json.dumps(create_app().openapi())
    named = set(NAMED_PATH.findall(text)) | {target.partition("#")[0] for target in LINK.findall(text)}
    missing = sorted(path for path in named if not re.match(r"[a-z]+:", path) and not (ROOT / path).is_file())
    assert not missing, missing
    assert "DESIGN" not in text


def test_no_shipped_text_refers_to_the_unshipped_design_document() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    mentions = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".js", ".html", ".toml", ".yaml", ".yml"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(r"\bDESIGN\b|DESIGN\.md|/work/shared", line) and name != "tests/docs/test_links.py":
                mentions.append(f"{name}:{number}: {line.strip()}")
    assert not mentions, "\n".join(mentions)
