"""The environment of a child process that must import *this* checkout's ``meshctx`` and service."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def checkout_env(*extra_paths: Path, keep_pythonpath: bool = False, **extra: str) -> dict[str, str]:
    """``os.environ`` with ``src/``, ``service/`` (then ``extra_paths``) first on ``PYTHONPATH``; ``extra`` set."""
    env = dict(os.environ)
    paths = [str(REPO / "src"), str(REPO / "service"), *map(str, extra_paths)]
    if keep_pythonpath and env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env
