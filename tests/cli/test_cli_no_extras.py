"""``pip install meshctx`` with no extras: a fresh venv that sees only ``src/`` (no httpx, torch, PyYAML or the
service). Offline planning works; everything that needs an extra exits 2 naming it, never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


#: The bare venv's environment: a developer's PYTHONPATH (e.g. ``src:service``) must not hand it the extras.
BARE_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        env=BARE_ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "meshctx.pth").write_text(f"{ROOT / 'src'}\n")  # what an editable install without deps adds
    assert sysconfig.get_paths()["purelib"] != purelib
    return python


def bare(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(python), "-m", "meshctx.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=BARE_ENV,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def test_the_bare_venv_has_no_extras(bare_python: Path) -> None:
    extras = "('httpx', 'torch', 'yaml', 'meshctx_service')"
    probe = f"import importlib.util as u; print([m for m in {extras} if u.find_spec(m)])"
    done = subprocess.run([str(bare_python), "-c", probe], capture_output=True, text=True, check=True, env=BARE_ENV)
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


def bare_script(python: Path, script: str) -> list[str]:
    """The lines ``script`` prints in the bare venv (it must exit 0)."""
    done = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, timeout=60, check=False, env=BARE_ENV
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_library_imports_name_their_extra(bare_python: Path) -> None:
    script = (
        "import meshctx\n"
        "try:\n    import meshctx.client\nexcept ModuleNotFoundError as e:\n    print(e)\n"
        "try:\n    meshctx.MeshContext.build(meshctx.FSDP2Config(), world_size=8)\n"
        "except ModuleNotFoundError as e:\n    print(e)\n"
    )
    assert bare_script(bare_python, script) == [
        "meshctx.client needs httpx: pip install 'meshctx[client]'",
        "MeshContext.build needs torch: pip install 'meshctx[torch]'",
    ]


def test_the_scheduler_checks_run_without_extras(bare_python: Path) -> None:
    """Kubernetes admission and the SkyPilot policy are the library's: no pydantic, FastAPI, YAML or torch."""
    script = (
        "import sys\n"
        "from meshctx.integrations.kubernetes_admission import review\n"
        "from meshctx.integrations.skypilot_policy import check_task\n"
        "job = {'apiVersion': 'trainer.kubeflow.org/v1alpha1', 'kind': 'TrainJob',\n"
        "       'metadata': {'name': 'llm', 'annotations': {'meshctx.io/tp-size': '3'}},\n"
        "       'spec': {'trainer': {'numNodes': 2, 'numProcPerNode': 8}}}\n"
        "body = {'apiVersion': 'admission.k8s.io/v1', 'kind': 'AdmissionReview',\n"
        "        'request': {'uid': 'u1', 'operation': 'CREATE', 'object': job}}\n"
        "answer = review(body)['response']\n"
        "print(answer['allowed'], answer['status']['code'])\n"
        "task = {'num_nodes': 2, 'resources': {'accelerators': 'H100:8'}, 'envs': {'MESHCTX_TP_SIZE': '8'}}\n"
        "print(check_task(task))\n"
        "print(sorted(m for m in ('pydantic', 'fastapi', 'yaml', 'torch') if m in sys.modules))\n"
    )
    verdict, added, loaded = bare_script(bare_python, script)
    assert verdict == "False 403"
    assert "'MESHCTX_WORLD_SIZE': '16'" in added and "'MESHCTX_DP_SIZE': '2'" in added
    assert loaded == "[]"
