"""``pip install meshctx`` with no extras: a fresh venv that sees only ``src/`` (no httpx, torch, PyYAML or the
service). Offline planning works; everything that needs an extra exits 2 naming it, never with a traceback."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "meshctx.pth").write_text(f"{ROOT / 'src'}\n")  # what an editable install without deps adds
    assert sysconfig.get_paths()["purelib"] != purelib
    return python


def bare(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(python), "-m", "meshctx.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def test_the_bare_venv_has_no_extras(bare_python: Path) -> None:
    extras = "('httpx', 'torch', 'yaml', 'meshctx_service')"
    probe = f"import importlib.util as u; print([m for m in {extras} if u.find_spec(m)])"
    done = subprocess.run([str(bare_python), "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_validate_layout_and_render_work_offline(bare_python: Path) -> None:
    assert bare(bare_python, "validate", "--nnodes", "2", "--nproc_per_node", "8", "--tp", "8").returncode == 0
    assert bare(bare_python, "validate", "--world-size", "60", "--tp", "8").returncode == 1
    assert bare(bare_python, "layout", "--world-size", "64", "--tp", "8", "--rank", "3").returncode == 0
    rendered = bare(bare_python, "render", "trainjob", "--nnodes", "2", "--nproc-per-node", "8", "--image", "i:1")
    assert rendered.returncode == 0 and rendered.stdout.startswith("apiVersion: trainer.kubeflow.org/")


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("validate", "--world-size", "8", "--server", "http://127.0.0.1:9"), "meshctx validate --server needs httpx"),
        (("layout", "--world-size", "8", "--server", "http://127.0.0.1:9"), "meshctx layout --server needs httpx"),
        (("jobs", "list", "--server", "http://127.0.0.1:9"), "meshctx jobs list needs httpx"),
        (("clusters", "list", "--server", "http://127.0.0.1:9"), "meshctx clusters list needs httpx"),
    ],
)
def test_server_commands_name_the_client_extra(bare_python: Path, args: tuple[str, ...], hint: str) -> None:
    done = bare(bare_python, *args)
    assert done.returncode == 2
    assert hint in done.stderr and "pip install 'meshctx[client]'" in done.stderr


def test_serve_names_the_service_extra(bare_python: Path) -> None:
    done = bare(bare_python, "serve")
    assert done.returncode == 2 and "meshctx[service]" in done.stderr


def test_library_imports_name_their_extra(bare_python: Path) -> None:
    script = (
        "import meshctx\n"
        "try:\n    import meshctx.client\nexcept ModuleNotFoundError as e:\n    print(e)\n"
        "try:\n    meshctx.MeshContext.build(meshctx.FSDP2Config(), world_size=8)\n"
        "except ModuleNotFoundError as e:\n    print(e)\n"
    )
    done = subprocess.run([str(bare_python), "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "meshctx.client needs httpx: pip install 'meshctx[client]'",
        "MeshContext.build needs torch: pip install 'meshctx[torch]'",
    ]
