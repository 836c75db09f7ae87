"""Every command of README.md and docs/*.md runs as written, so a walkthrough cannot rot.

The ```bash and ```console blocks are extracted and run with ``meshctx`` on ``PATH`` (this checkout's CLI):

- a ```bash block runs as one ``bash`` script under ``set -euo pipefail``: every command must succeed;
- a ```console block runs each ``$ command`` on its own; it must exit 0, or N when the line ends in a comment
  ``# exit N``; the lines shown after it must be its output (all of it, or its start when they end in ``...``);
- where a block needs the service (``meshctx serve``, ``--server``, ``MESHCTX_SERVER``, ``:8000``), a real
  ``meshctx serve`` runs on a free loopback port with a temporary data directory: the ``meshctx serve`` line
  stands for it, and ``localhost:8000`` / ``127.0.0.1:8000`` point at it; ``pip install`` lines are no-ops
  (this environment has the package);
- a block right after ``<!-- not-run: reason -->`` is not run (keep that set small: ``NOT_RUN_MAX``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.serving import cli_env, meshctx_serve

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(\S.*?)\s*-->")
NOT_RUN_MAX = 3
FENCE = re.compile(r"^```(\w*)\s*$")
NEEDS_SERVER = re.compile(r"meshctx serve|--server|MESHCTX_SERVER|:8000\b")
SERVE_LINE = re.compile(r"^\s*(?:\.venv/bin/)?meshctx serve\b.*$", re.MULTILINE)
INSTALL_LINE = re.compile(r"^\s*\S*pip install .*$", re.MULTILINE)
EXIT = re.compile(r"#\s*exit (\d+)\b")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    text: str
    skipped: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            opened = FENCE.match(lines[i])
            if not opened:
                i += 1
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = NOT_RUN.search(before)
            if opened.group(1) in ("bash", "console"):
                text = "\n".join(lines[i + 1 : end])
                found.append(Block(path, i + 1, opened.group(1), text, marker.group(1) if marker else None))
            i = end + 1
    return found


ALL = blocks()


def _shell_env(tmp: Path, server: str | None, data_dir: Path) -> dict[str, str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "meshctx"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m meshctx.cli "$@"\n')
    wrapper.chmod(0o755)
    env = cli_env(MESHCTX_DATA_DIR=str(data_dir), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for name in ("MESHCTX_SERVER", "MESHCTX_TOKEN", "MESHCTX_DATABASE_URL", "MESHCTX_TOKENS_FILE"):
        env.pop(name, None)
    return env


def _as_run(text: str, server: str | None) -> str:
    text = SERVE_LINE.sub(": # meshctx serve: the test runs one", text)
    text = INSTALL_LINE.sub(": # pip install: this environment has the package", text)
    text = text.replace(".venv/bin/meshctx", "meshctx")
    if server is not None:
        address = server.removeprefix("http://")
        text = text.replace("localhost:8000", address).replace("127.0.0.1:8000", address)
    return text


def _console_steps(text: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    command: list[str] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            command = [line[2:]]
            steps.append(("", []))
        elif command and command[-1].endswith("\\"):
            command.append(line)
        elif steps:
            steps[-1][1].append(line.rstrip())
            continue
        else:
            raise AssertionError(f"console block starts with output, not a $ command: {line!r}")
        steps[-1] = ("\n".join(command), steps[-1][1])
    return steps


def _check_output(shown: list[str], printed: str, where: str) -> None:
    if not shown:
        return
    actual = [line.rstrip() for line in printed.splitlines()]
    if shown[-1].strip() == "...":
        head = shown[:-1]
        assert actual[: len(head)] == head, f"{where}: the output does not start as the docs show"
    else:
        assert actual == shown, f"{where}: the output is not what the docs show"


def test_not_run_blocks_are_few_and_say_why() -> None:
    skipped = [(b.id, b.skipped) for b in ALL if b.skipped is not None]
    assert len(skipped) <= NOT_RUN_MAX, skipped
    assert ALL and any(b.skipped is None for b in ALL)


@pytest.mark.parametrize("block", [b for b in ALL if b.skipped is None], ids=lambda b: b.id)
def test_docs_block_runs(block: Block, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    if NEEDS_SERVER.search(block.text):
        with meshctx_serve(data_dir) as server:
            _run_block(block, tmp_path, work, server, data_dir)
    else:
        _run_block(block, tmp_path, work, None, data_dir)


def _run_block(block: Block, tmp: Path, work: Path, server: str | None, data_dir: Path) -> None:
    env = _shell_env(tmp, server, data_dir)
    if block.language == "bash":
        script = "set -euo pipefail\n" + _as_run(block.text, server)
        done = subprocess.run(
            ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{block.id} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr, f"{block.id}:\n{done.stderr}"
        return
    for command, shown in _console_steps(block.text):
        expected = EXIT.search(command)
        where = f"{block.id}: $ {command}"
        done = subprocess.run(
            ["bash", "-c", "set -o pipefail\n" + _as_run(command, server)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == (int(expected.group(1)) if expected else 0), (
            f"{where} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
        assert "Traceback" not in done.stdout + done.stderr, f"{where}:\n{done.stderr}"
        _check_output(shown, done.stdout, where)
