"""Load NeMo Automodel 0.7.0's topology modules from the installed distribution without running its packages'
``__init__`` files (they import the whole training stack). The parent packages are registered as empty
modules whose ``__path__`` points into the distribution, so the ordinary import system finds the four
modules (and the two small modules ``config`` itself imports) by path.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import ModuleType

import pytest

VERSION = "0.7.0"
BASE = "nemo_automodel.components.distributed"
PACKAGES = ("nemo_automodel", "nemo_automodel.components", BASE, f"{BASE}.pipelining")


@dataclass(frozen=True)
class Nemo:
    mesh: ModuleType
    mesh_utils: ModuleType
    config: ModuleType
    init_utils: ModuleType


def _package_dir(name: str, top: Path) -> Path:
    return top.joinpath(*name.split(".")[1:])


def load_nemo() -> Nemo:
    """NeMo's modules, or a loud skip naming the install command when the distribution is missing."""
    try:
        dist = distribution("nemo-automodel")
    except PackageNotFoundError:
        reason = f"nemo-automodel=={VERSION} is not installed: pip install --no-deps nemo-automodel=={VERSION}"
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason, allow_module_level=True)
    if dist.version != VERSION:
        pytest.fail(f"the differential tests pin NeMo Automodel {VERSION}, found {dist.version}")
    top = Path(str(dist.locate_file("nemo_automodel")))
    for name in PACKAGES:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(_package_dir(name, top))]
            sys.modules[name] = package
    modules = {short: importlib.import_module(f"{BASE}.{short}") for short in ("mesh", "mesh_utils", "config")}
    return Nemo(init_utils=importlib.import_module(f"{BASE}.init_utils"), **modules)


@contextmanager
def meshctx_as_nemo_mesh() -> Iterator[None]:
    """Alias NeMo's ``mesh`` module to ``meshctx.mesh`` (the one-line migration), then restore it."""
    import meshctx.mesh

    name = f"{BASE}.mesh"
    saved = sys.modules[name]
    sys.modules[name] = meshctx.mesh
    try:
        yield
    finally:
        sys.modules[name] = saved
