"""``meshctx jobs|clusters|db`` end to end: the installed CLI entry point in a subprocess against a live server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from meshctx.config import ParallelismSizes
from meshctx.plan import plan_mesh
from tests.support.servers import LiveServer, service_env


def meshctx(server: LiveServer, *args: str, token: str = "admin-a-0123456789") -> subprocess.CompletedProcess[str]:
    env = service_env(MESHCTX_SERVER=server.url, MESHCTX_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-m", "meshctx.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_cli_registry_commands(server: LiveServer) -> None:
    done = meshctx(server, "clusters", "put", "pool", "--nodes", "2", "--gpus-per-node", "8", "--nvlink-domain", "8")
    assert done.returncode == 0 and "2 nodes × 8 GPUs = 16 GPUs" in done.stdout, done.stderr
    assert "pool" in meshctx(server, "clusters", "list").stdout

    done = meshctx(
        server,
        "jobs",
        "register",
        "j1",
        "--world-size",
        "8",
        "--tp",
        "2",
        "--cluster",
        "pool",
        "--label",
        "team=llm",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    expected = plan_mesh("fsdp2", ParallelismSizes(tp_size=2), world_size=8).fingerprint()
    assert job["fingerprint"] == expected and job["labels"] == {"team": "llm"}

    done = meshctx(server, "jobs", "register", "j2", "--world-size", "16", "--cluster", "pool")
    assert done.returncode == 1 and "capacity_exceeded" in done.stderr and "8 are free" in done.stderr
    done = meshctx(server, "jobs", "register", "j3", "--world-size", "16", "--tp", "3")
    assert done.returncode == 1 and "fix:" in done.stderr  # the planner's problem with its hint

    listing = meshctx(server, "jobs", "list", "--label", "team=llm")
    assert listing.returncode == 0 and listing.stdout.splitlines()[1].split()[:4] == ["j1", "registered", "pool", "8"]
    done = meshctx(server, "jobs", "attest", "j1", "--fingerprint", "sha256:other", "--json")
    assert done.returncode == 1 and json.loads(done.stdout)["expected"] == expected
    done = meshctx(server, "jobs", "attest", "j1", "--fingerprint", expected)
    assert done.returncode == 0 and "matches" in done.stdout
    assert "j1: running" in meshctx(server, "jobs", "get", "j1").stdout
    assert meshctx(server, "jobs", "state", "j1", "finished").returncode == 0
    assert meshctx(server, "jobs", "delete", "j1", token="reader-a-0123456789").returncode == 1  # read-only token
    assert meshctx(server, "jobs", "delete", "j1").returncode == 0
    assert meshctx(server, "jobs", "get", "j1").returncode == 1
    assert meshctx(server, "clusters", "delete", "pool").returncode == 0

    unreachable = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "jobs", "list", "--server", "http://127.0.0.1:9"],
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 3


def test_cli_db_upgrade(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    done = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "db", "upgrade", "--database-url", f"sqlite:///{database}"],
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "schema revision" in done.stdout, done.stderr
    tables = {row[0] for row in sqlite3.connect(database).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "clusters", "attestations"} <= tables
    bad = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "db", "upgrade", "--database-url", "mysql://x/y"],
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "Unsupported database URL" in bad.stderr


def test_register_gives_the_warnings_validate_gives(server: LiveServer) -> None:
    """One rule: an ep group of 16 over two 8-GPU nodes is warned about by ``validate`` and by ``jobs register``."""
    shape = ("--nnodes", "2", "--nproc-per-node", "8", "--ep", "16")
    validated = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "validate", *shape, "--json"],
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    warnings = json.loads(validated.stdout)["warnings"]
    assert [w["code"] for w in warnings] == ["axis_spans_nodes"] and "ep group" in warnings[0]["message"]
    done = meshctx(server, "jobs", "register", "warned-ep", *shape, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["warnings"] == warnings
    done = meshctx(server, "jobs", "register", "warned-ep", *shape)
    assert done.returncode == 0 and f"warning: axis_spans_nodes: {warnings[0]['message']}" in done.stderr
    assert meshctx(server, "jobs", "delete", "warned-ep").returncode == 0
