"""Fixtures for the tests against the real ``skypilot`` package, which lives in its own virtualenv
(``.venv-sky``, made by ``scripts/skypilot-venv``): its dependencies pin versions meshctx's service does not use."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKY_VERSION = "0.14.1"


@pytest.fixture(scope="session")
def sky_python() -> Path:
    """The interpreter of ``.venv-sky`` (or ``$MESHCTX_SKY_PYTHON``) once it imports ``sky``; the tests are
    skipped, loudly, only when SkyPilot could not be installed there."""
    python = Path(os.environ.get("MESHCTX_SKY_PYTHON", REPO / ".venv-sky" / "bin" / "python"))
    reason = None
    if not python.is_file():
        reason = f"{python} does not exist"
    else:
        done = subprocess.run(
            [str(python), "-c", "import sky; print(sky.__version__)"], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            reason = f"{python} cannot import sky: {done.stderr.strip()[-500:]}"
    if reason is not None:
        message = f"!!! SKYPILOT TESTS SKIPPED: {reason}. Run scripts/skypilot-venv (scripts/test runs it)."
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    return python
