"""The offline CLI, run as a real subprocess: exit codes, human text and the JSON wire format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'service'}"}
    return subprocess.run(
        [sys.executable, "-m", "meshctx.cli", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_validate_valid_json_matches_the_wire_format() -> None:
    done = run("validate", "--world-size", "64", "--tp", "8", "--pp", "2", "--gpus-per-node", "8", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["valid"] is True and body["problems"] == []
    assert body["plan"]["device_mesh"]["shape"] == [2, 1, 4, 1, 8]
    assert body["plan"]["cluster"]["spans"]["tp"] == {"nodes": 1}


def test_validate_invalid_prints_problems_hints_and_suggestions() -> None:
    done = run("validate", "--world-size", "60", "--tp", "8", "--pp", "2")
    assert done.returncode == 1
    assert "INVALID" in done.stdout
    assert "world_size_not_divisible" in done.stdout and "hint:" in done.stdout
    assert "suggestions:" in done.stdout and "--tp" in done.stdout


def test_nnodes_and_elastic_range() -> None:
    done = run("validate", "--nnodes", "8", "--nproc-per-node", "8", "--tp", "8", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["plan"]["world_size"] == 64
    ranged = run("validate", "--nnodes", "1:4", "--nproc-per-node", "8", "--tp", "8", "--pp", "2", "--json")
    body = json.loads(ranged.stdout)
    assert ranged.returncode == 1
    assert [w["valid"] for w in body["world_sizes"]] == [False, True, False, True]


def test_usage_errors_exit_2() -> None:
    assert run("validate", "--tp", "2").returncode == 2
    assert run("validate", "--world-size", "8", "--tp", "two").returncode == 2
    assert run("validate", "--nnodes", "4:2", "--nproc-per-node", "8").returncode == 2
    assert run("validate", "--nnodes", "4").returncode == 2
    outside = run("layout", "--world-size", "8", "--rank", "8")
    assert outside.returncode == 2 and "outside" in outside.stderr
    assert run().returncode == 2


def test_layout_rank_view_and_groups() -> None:
    done = run("layout", "--world-size", "16", "--tp", "4", "--pp", "2", "--rank", "5", "--json")
    view = json.loads(done.stdout)
    assert view["rank"] == 5 and view["groups"]["tp"] == [4, 5, 6, 7] and view["coordinates"]["pp"] == 0
    assert view["groups"]["pp"] == [5, 13]
    text = run("layout", "--world-size", "16", "--tp", "4", "--pp", "2", "--rank", "5")
    assert "tp" in text.stdout and "[4, 5, 6, 7]" in text.stdout
    groups = json.loads(run("layout", "--world-size", "8", "--tp", "2", "--groups", "--json").stdout)
    assert groups["groups"]["tp"] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert "groups:" in run("layout", "--world-size", "8", "--tp", "2", "--groups").stdout
    invalid = run("layout", "--world-size", "6", "--tp", "4")
    assert invalid.returncode == 1 and "world_size_not_divisible" in invalid.stdout


def test_rank_subset_flag() -> None:
    done = run("layout", "--ranks", "8-15", "--tp", "2", "--rank", "9", "--json")
    assert json.loads(done.stdout)["groups"]["tp"] == [8, 9]
