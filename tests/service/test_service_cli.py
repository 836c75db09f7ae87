"""``meshctx validate/layout --server URL`` prints exactly what the local commands print, with the same exit status."""

from __future__ import annotations

import subprocess
import sys

import pytest

from meshctx.cli import main
from tests.support.servers import REPO, LiveServer, free_port, service_env

CASES = [
    "validate --world-size 64 --tp 8 --pp 2",
    "validate --world-size 64 --tp 3",
    "validate --world-size 64 --tp 3 --json",
    "validate --nnodes 2:8 --nproc-per-node 8 --tp 16 --ep 4 --heads 12",
    "validate --world-size 256 --tp 16 --gpus-per-node 8 --nvlink-domain 72 --json",
    "validate --ranks 8-15 --tp 2 --strategy megatron_fsdp --cp 2",
    "validate --world-size 8 --strategy nonsense",
    "layout --world-size 32 --tp 4 --dp-replicate 2",
    "layout --world-size 32 --tp 4 --dp-replicate 2 --groups --json",
    "layout --world-size 131072 --tp 8 --pp 4 --ep 8 --rank 131071",
    "layout --world-size 131072 --tp 8 --pp 4 --ep 8 --rank 131071 --json",
    "layout --world-size 16 --tp 3",
    "layout --world-size 16 --tp 2 --rank 16",
    "validate --nnodes 2",
]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("args", CASES)
def test_server_output_is_byte_identical(
    args: str, live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    local = run(args.split(), capsys)
    remote = run([*args.split(), "--server", live_server.url], capsys)
    assert remote == local
    assert local[0] in (0, 1, 2) and (local[1] or local[2])


def test_exit_statuses_cover_valid_invalid_and_usage(
    live_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = [run([*CASES[i].split(), "--server", live_server.url], capsys)[0] for i in (0, 1, 12)]
    assert codes == [0, 1, 2]


def test_unreachable_server_is_exit_3() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshctx.cli",
            "validate",
            "--world-size",
            "8",
            "--server",
            f"http://127.0.0.1:{free_port()}",
        ],
        cwd=REPO,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.startswith("meshctx validate: server error: no answer from http://127.0.0.1:")


def test_cli_subprocess_against_server(live_server: LiveServer) -> None:
    argv = [sys.executable, "-m", "meshctx.cli", "layout", "--world-size", "64", "--tp", "8", "--rank", "9"]
    local, remote = (
        subprocess.run(cmd, cwd=REPO, env=service_env(), capture_output=True, text=True, timeout=60)
        for cmd in (argv, [*argv, "--server", live_server.url])
    )
    assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    assert local.returncode == 0 and "tp" in local.stdout
