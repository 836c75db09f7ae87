"""The SkyPilot admin policy with the real ``skypilot`` package: SkyPilot's own ``admin_policy_utils.apply``
loads ``admin_policy`` from its config and applies it to real ``sky.Task`` objects, both in process
(``meshctx.integrations.skypilot_admin.MeshctxPolicy``) and over HTTP (``RestfulAdminPolicy`` posting to
``meshctx serve`` on loopback). One implementation answers both, so the verdicts are the same."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshctx.config import ParallelismSizes as P
from meshctx.launch import LaunchSpec, render
from meshctx.plan import plan_mesh
from tests.skypilot.conftest import REPO, SKY_VERSION
from tests.support.servers import LiveServer, free_port, service_env, start_server

DRIVER = Path(__file__).with_name("sky_driver.py")
IN_PROCESS = "meshctx.integrations.skypilot_admin.MeshctxPolicy"
RENDERED_PLAN = plan_mesh("fsdp2", P(tp_size=8, pp_size=2), world_size=32)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("sky-server"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def outcomes(sky_python: Path, server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case of ``sky_driver.CASES`` (plus a rendered task) under each policy location."""
    work = tmp_path_factory.mktemp("sky")
    rendered = render("skypilot", RENDERED_PLAN, LaunchSpec(nnodes=4, nproc_per_node=8, accelerator="H100")).data
    env = service_env(HOME=str(work), MESHCTX_EXTRA_CASES=json.dumps({"rendered": rendered}))
    env.pop("SKYPILOT_GLOBAL_CONFIG", None)
    locations = [IN_PROCESS, f"{server.url}/v1/policy/skypilot", f"http://127.0.0.1:{free_port()}/v1/policy/skypilot"]
    done = subprocess.run(
        [str(sky_python), str(DRIVER), str(work), *locations],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["sky_version"] == SKY_VERSION
    return {"in_process": results[locations[0]], "http": results[locations[1]], "down": results[locations[2]]}


@pytest.mark.parametrize("where", ["in_process", "http"])
def test_valid_task_gets_world_size_dp_and_fingerprint(outcomes: dict[str, Any], where: str) -> None:
    envs = outcomes[where]["valid"]["envs"]
    assert envs["MESHCTX_WORLD_SIZE"] == "16" and envs["MESHCTX_DP_SIZE"] == "2"
    assert envs["MESHCTX_FINGERPRINT"] == plan_mesh("fsdp2", P(tp_size=8), world_size=16).fingerprint()
    assert outcomes[where]["rendered"]["envs"]["MESHCTX_FINGERPRINT"] == RENDERED_PLAN.fingerprint()


@pytest.mark.parametrize("where", ["in_process", "http"])
def test_tasks_meshctx_has_no_say_in_pass_unchanged(outcomes: dict[str, Any], where: str) -> None:
    assert outcomes[where]["no_meshctx_envs"] == {"envs": {"OTHER": "1"}, "num_nodes": 3}
    assert outcomes[where]["no_resources"] == {"envs": {"MESHCTX_TP_SIZE": "8"}, "num_nodes": 2}


@pytest.mark.parametrize("where", ["in_process", "http"])
@pytest.mark.parametrize(
    ("case", "phrase"),
    [
        ("invalid", "meshctx: 2 nodes × 8 GPUs: invalid topology: world_size_not_divisible"),
        ("superscript", "meshctx: MESHCTX_TP_SIZE must be an integer from 1 to 2147483647, got '²'"),
        ("too_many_nodes", "meshctx: num_nodes: nnodes 3000000 × nproc_per_node 8 = 24000000 exceeds the largest"),
        ("any_of_two_counts", "resources.accelerators must name one GPU count per node, got [4, 8]"),
        ("stale_fingerprint", "render the task again"),
    ],
)
def test_refusals_reach_the_user_with_the_reason(outcomes: dict[str, Any], where: str, case: str, phrase: str) -> None:
    assert phrase in outcomes[where][case]["rejected"]


def test_in_process_and_http_give_the_same_verdicts(outcomes: dict[str, Any]) -> None:
    local, remote = outcomes["in_process"], outcomes["http"]
    assert local.keys() == remote.keys()
    for case, verdict in local.items():
        if "rejected" in verdict:  # SkyPilot prefixes an HTTP refusal with the policy URL
            assert remote[case]["rejected"].endswith(verdict["rejected"]), case
        else:
            assert remote[case] == verdict, case


def test_a_policy_url_that_is_down_fails_every_request(outcomes: dict[str, Any]) -> None:
    """SkyPilot fails closed (docs/skypilot.md): even tasks meshctx would pass, or has no say in, are refused."""
    for case, verdict in outcomes["down"].items():
        reason = verdict.get("rejected", "")
        assert "Failed to call admin policy URL" in reason and "Connection refused" in reason, (case, verdict)


def test_the_policy_module_is_the_only_one_importing_sky() -> None:
    sources = [p for p in (REPO / "src" / "meshctx").rglob("*.py") if "import sky" in p.read_text()]
    assert [p.name for p in sources] == ["skypilot_admin.py"]
    assert "sky" not in os.environ.get("PYTHONPATH", "")
