"""The rendered launch lines run as printed, whichever way the user names the training command: ``-- python
script.py`` (the form docs/launch.md shows) and ``-- script.py``. torchrun runs its first argument with its own
Python, so ``torchrun python script.py`` would be ``python python script.py`` on every rank; the renderings must
start the script either way. Each case runs 2 gloo ranks on 127.0.0.1 that join one process group and all-reduce."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch.distributed.run")

REPO = Path(__file__).resolve().parents[2]
WORLD = 2
SCRIPT = """\
import sys
from pathlib import Path

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
total = torch.tensor([dist.get_rank() + 1])
dist.all_reduce(total)
Path(sys.argv[1], f"rank{dist.get_rank()}").write_text(f"{dist.get_world_size()} {int(total)} {sys.argv[2:]}")
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    """The checkout importable, the venv's ``python`` and ``torchrun`` first on PATH, no ``MESHCTX_*`` or ``PET_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHCTX_", "PET_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO / "service")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def render(target: str, command: list[str], *flags: str) -> dict[str, Any]:
    topology = ["--nnodes", "1", "--nproc-per-node", str(WORLD), "--tp", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "meshctx.cli", "render", target, *topology, *flags, "--json", "--", *command],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)["rendering"])


def commands(tmp_path: Path) -> dict[str, list[str]]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    return {
        "python script.py": ["python", str(script), str(out), "--lr", "3e-4"],
        "script.py": [str(script), str(out), "--lr", "3e-4"],
    }


def assert_every_rank_ran(out: Path, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "can't open file" not in done.stderr
    reports = sorted(p.read_text() for p in out.iterdir())
    assert reports == [f"{WORLD} 3 ['--lr', '3e-4']"] * WORLD


@pytest.mark.torch
@pytest.mark.timeout(240)
@pytest.mark.parametrize("form", ["python script.py", "script.py"])
def test_the_torchrun_text_runs_the_training_command(form: str, tmp_path: Path) -> None:
    command = commands(tmp_path)[form]
    rendering = render("torchrun", command, "--master-port", str(free_port()))
    done = subprocess.run(
        ["bash", "-c", rendering["text"]], env=environment(), capture_output=True, text=True, timeout=200, check=False
    )
    assert_every_rank_ran(tmp_path / "out", done)


@pytest.mark.torch
@pytest.mark.timeout(240)
@pytest.mark.parametrize("form", ["python script.py", "script.py"])
def test_the_trainjob_command_runs_under_the_runtimes_torchrun_settings(form: str, tmp_path: Path) -> None:
    """The TrainJob's container command as the torch-distributed runtime starts it: torchrun configured through the
    ``PET_*`` variables the runtime sets on each node (here one node, this machine)."""
    command = commands(tmp_path)[form]
    trainer = render("trainjob", command)["data"]["spec"]["trainer"]
    runtime = {
        "PET_NNODES": "1",
        "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
        "PET_NODE_RANK": "0",
        "PET_MASTER_ADDR": "127.0.0.1",
        "PET_MASTER_PORT": str(free_port()),
    }
    env = environment() | runtime | {item["name"]: item["value"] for item in trainer["env"]}
    done = subprocess.run(trainer["command"], env=env, capture_output=True, text=True, timeout=200, check=False)
    assert_every_rank_ran(tmp_path / "out", done)


@pytest.mark.parametrize("target", ["torchrun", "slurm", "trainjob", "skypilot", "job", "jobset"])
def test_every_target_starts_a_command_naming_its_interpreter_as_written(target: str) -> None:
    """torchrun gets ``--no-python`` right before ``python …`` (and never before a script) in every rendering."""
    flags = ("--accelerator", "H100") if target == "skypilot" else ()
    for command, expected in (
        (["python3", "train.py"], "--no-python python3 train.py"),
        (["/usr/bin/python3.12", "-u", "train.py"], "--no-python /usr/bin/python3.12 -u train.py"),
        (["train.py", "--cfg", "python"], "train.py --cfg python"),
    ):
        rendering = render(target, command, *flags)
        words = " ".join(json.dumps(rendering["data"]).replace('"', " ").replace(",", " ").split())
        words += " " + " ".join(rendering["text"].replace("\\\n", " ").replace("'", "").split())
        assert expected in words
        assert ("--no-python" in words) == expected.startswith("--no-python")
