"""Runs under ``.venv-sky`` (the real ``skypilot`` package): applies SkyPilot's own admin-policy machinery
(``admin_policy_utils.apply``, which reads ``admin_policy`` from the SkyPilot config) to real ``sky.Task``
objects, once per policy location given on the command line, and prints what happened to each task as JSON.

Usage: ``python sky_driver.py WORKDIR LOCATION...`` where LOCATION is ``module.Class`` or ``http://...``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

CASES: dict[str, dict[str, Any]] = {
    "valid": {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "8"}},
    "invalid": {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "3"}},
    "superscript": {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "²"}},
    "too_many_nodes": {
        "num_nodes": 3_000_000,
        "resources": {"accelerators": "H100:8"},
        "envs": {"MESHCTX_TP_SIZE": "8"},
    },
    "any_of_two_counts": {
        "num_nodes": 2,
        "resources": {"any_of": [{"accelerators": "H100:8"}, {"accelerators": "A100:4"}]},
        "envs": {"MESHCTX_TP_SIZE": "8"},
    },
    "no_meshctx_envs": {"num_nodes": 3, "resources": {"accelerators": "H100:8"}, "envs": {"OTHER": "1"}},
    "no_resources": {"num_nodes": 2, "envs": {"MESHCTX_TP_SIZE": "8"}},
    "stale_fingerprint": {
        "num_nodes": 4,
        "resources": {"accelerators": "H100:8"},
        "envs": {"MESHCTX_TP_SIZE": "8", "MESHCTX_FINGERPRINT": "sha256:0"},
    },
}


def main(workdir: Path, locations: list[str], extra_cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    os.environ["SKYPILOT_GLOBAL_CONFIG"] = str(workdir / "config.yaml")
    (workdir / "config.yaml").write_text("{}\n")  # sky reads it at import
    import sky
    from sky import exceptions, skypilot_config
    from sky.utils import admin_policy_utils

    results: dict[str, Any] = {"sky_version": sky.__version__}
    for location in locations:
        (workdir / "config.yaml").write_text(f"admin_policy: {location}\n")
        skypilot_config.reload_config()
        outcomes: dict[str, Any] = {}
        for name, config in {**CASES, **extra_cases}.items():
            run = {"run": "torchrun train.py", **config}
            task = sky.Task.from_yaml_config(run)
            try:
                dag, _ = admin_policy_utils.apply(
                    task, request_name=sky.AdminPolicyRequestName.CLUSTER_LAUNCH, at_client_side=True
                )
            except exceptions.UserRequestRejectedByPolicy as rejected:  # also wraps an unreachable policy URL
                outcomes[name] = {"rejected": str(rejected)}
            else:
                (mutated,) = dag.tasks
                outcomes[name] = {"envs": dict(mutated.envs), "num_nodes": mutated.num_nodes}
        results[location] = outcomes
    return results


if __name__ == "__main__":
    extra = json.loads(os.environ.get("MESHCTX_EXTRA_CASES", "{}"))
    print(json.dumps(main(Path(sys.argv[1]), sys.argv[2:], extra)))
