"""A real one-node Slurm cluster with the shipped Lua plugins (``.ci/slurm-up``), shared by tests/slurm.

``.ci/run`` starts it and exports ``MESHCTX_SLURM_DIR``; run alone, the fixture starts it itself (as root, with
Debian's slurmctld, slurmd, slurm-client, munge and slurm-wlm-basic-plugins installed) and stops it afterwards.
When the cluster cannot start, every test here is skipped with the reason in capitals and the daemons' logs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLURM_UP = ROOT / ".ci" / "slurm-up"


@dataclass(frozen=True)
class Cluster:
    dir: Path
    conf: Path  # the cluster's slurm.conf: CliFilterPlugins=lua and JobSubmitPlugins=lua
    bypass_conf: Path  # a user's own slurm.conf for the same cluster, without the CLI filter
    env: dict[str, str]  # SLURM_CONF and a PATH whose meshctx and torchrun are this checkout's

    def run(
        self, *argv: str, bypass: bool = False, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = self.env | (env or {}) | {"SLURM_CONF": str(self.bypass_conf if bypass else self.conf)}
        return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout, check=False)

    def restart_controller(self) -> subprocess.CompletedProcess[str]:
        """Restart slurmctld with its state (jobs survive), as an admin does; answers when it is up again."""
        return subprocess.run(
            [str(SLURM_UP), "--restart-ctld", str(self.dir)], capture_output=True, text=True, timeout=60, check=False
        )


def _free_port() -> int:
    """A free port below 60000 (.ci/slurm-up gives the DOWN nodes the slurmd port + 1000)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 60000:
            return port


def _answers(conf: Path) -> bool:
    if not conf.is_file() or shutil.which("sinfo") is None:
        return False
    env = os.environ | {"SLURM_CONF": str(conf)}
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=30, check=False)
    return done.returncode == 0 and "idle" in done.stdout


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    given = os.environ.get("MESHCTX_SLURM_DIR")
    directory = Path(given) if given else tmp_path_factory.mktemp("slurm")
    started = False
    if not _answers(directory / "slurm.conf"):
        if os.geteuid() != 0:
            pytest.skip("SLURM CLUSTER CANNOT START: .ci/slurm-up needs root (slurmd runs jobs as their users)")
        # its own ports: a cluster another run started (.ci/run's) keeps 6817/6818
        ports = {"MESHCTX_SLURMCTLD_PORT": str(_free_port()), "MESHCTX_SLURMD_PORT": str(_free_port())}
        done = subprocess.run(
            [str(SLURM_UP), str(directory)],
            env=os.environ | ports,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"SLURM CLUSTER DID NOT START (.ci/slurm-up exited {done.returncode}):\n{done.stderr[-3000:]}")
        started = True
    conf = directory / "slurm.conf"
    bypass = tmp_path_factory.mktemp("user-slurm-conf") / "slurm.conf"
    bypass.write_text(
        "".join(line for line in conf.read_text().splitlines(True) if not line.startswith("CliFilterPlugins"))
    )
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MESHCTX_CLI"))}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    yield Cluster(directory, conf, bypass, env | {"SLURM_CONF": str(conf)})
    subprocess.run(
        ["scancel", "--user", pwd.getpwuid(os.geteuid()).pw_name], env=env | {"SLURM_CONF": str(conf)}, check=False
    )
    if started:
        subprocess.run([str(SLURM_UP), "--down", str(directory)], check=False, timeout=60)
