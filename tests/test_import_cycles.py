"""No import cycle inside the library, and the library reaches the service through one function only.

``scripts/check_import_cycles.py`` is run as a program, on the real tree and on small packages written here
that have exactly the kinds of cycle it must find (lazy, ``TYPE_CHECKING``, relative, ``from pkg import mod``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_import_cycles.py"


def check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / next(iter(files)).split("/")[0]


def test_the_library_and_the_service_have_no_import_cycle_and_the_library_names_the_service_in_one_place() -> None:
    result = check(
        ROOT / "src" / "meshctx",
        ROOT / "service" / "meshctx_service",
        "--forbid",
        "meshctx=meshctx_service",
        "--allow",
        "meshctx.cli.common",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no import cycles" in result.stdout


def test_a_cycle_through_a_lazy_or_type_checking_import_is_found(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "def f():\n    from .b import g\n    return g\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import c\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": "from .. import a\n",
            "pkg/d.py": "from . import a\n",  # imports into the cycle, is not part of it
        },
    )
    result = check(package)
    assert result.returncode == 1
    assert "import cycle: pkg.a ↔ pkg.b ↔ pkg.sub.c" in result.stdout
    assert "pkg.d" not in result.stdout


def test_a_forbidden_import_is_found_outside_the_allowed_module(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "lib/__init__.py": "",
            "lib/door.py": "def load():\n    import svc.settings\n",
            "lib/other.py": "def sneak():\n    from svc import app\n",
        },
    )
    result = check(package, "--forbid", "lib=svc", "--allow", "lib.door")
    assert result.returncode == 1
    assert "forbidden import: lib.other imports svc" in result.stdout
    assert "lib.door" not in result.stdout.replace("(only lib.door may)", "")
