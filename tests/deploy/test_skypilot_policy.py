"""The SkyPilot admin-policy contract: JSON-string bodies in and out, 400 text on reject."""

from __future__ import annotations

import json

import pytest
import yaml

from meshctx.config import ParallelismSizes as P
from meshctx.integrations.skypilot_policy import TaskRejected
from meshctx.launch import LaunchSpec, render
from meshctx.plan import plan_mesh
from meshctx_service.integrations.skypilot import PolicyRequestError, apply_policy


def user_request(task: dict) -> str:
    """What SkyPilot's RestfulAdminPolicy sends: ``json=UserRequest.encode()``, a JSON string."""
    return json.dumps(
        {
            "task": yaml.safe_dump(task),
            "skypilot_config": yaml.safe_dump({"allowed_clouds": ["kubernetes"]}),
            "request_name": "sky.launch",
            "request_options": {"cluster_name": "c", "idle_minutes_to_autostop": None, "down": False, "dryrun": False},
            "at_client_side": False,
            "user": yaml.safe_dump({"id": "abc", "name": "alice"}),
        }
    )


def mutated(body: str) -> dict:
    out = json.loads(apply_policy(body))
    assert set(out) == {"task", "skypilot_config"}
    return {"task": yaml.safe_load(out["task"]), "skypilot_config": yaml.safe_load(out["skypilot_config"])}


def test_task_without_meshctx_envs_passes_unchanged() -> None:
    task = {"name": "t", "num_nodes": 3, "resources": {"accelerators": "H100:8"}, "run": "echo hi"}
    body = user_request(task)
    assert json.loads(apply_policy(body))["task"] == json.loads(body)["task"]


def test_rendered_task_is_accepted_and_keeps_its_fingerprint() -> None:
    plan = plan_mesh("fsdp2", P(tp_size=8, pp_size=2), world_size=32)
    task = render("skypilot", plan, LaunchSpec(nnodes=4, nproc_per_node=8, accelerator="H100")).data
    out = mutated(user_request(task))
    assert out["task"]["envs"]["MESHCTX_FINGERPRINT"] == plan.fingerprint()
    assert out["skypilot_config"] == {"allowed_clouds": ["kubernetes"]}


def test_hand_written_task_gets_world_size_dp_and_fingerprint() -> None:
    task = {"num_nodes": 2, "resources": {"accelerators": {"A100": 8}}, "envs": {"MESHCTX_TP_SIZE": "8"}}
    envs = mutated(user_request(task))["task"]["envs"]
    assert envs["MESHCTX_WORLD_SIZE"] == "16" and envs["MESHCTX_DP_SIZE"] == "2"
    assert envs["MESHCTX_FINGERPRINT"] == plan_mesh("fsdp2", P(tp_size=8), world_size=16).fingerprint()


def test_task_without_gpus_passes_unchanged_unless_it_names_its_processes() -> None:
    """A CPU task (or one whose accelerators come from elsewhere) cannot be checked: its processes per node
    are unknown, so it passes untouched; ``MESHCTX_NPROC_PER_NODE`` makes it checkable."""
    task = {"num_nodes": 2, "envs": {"MESHCTX_TP_SIZE": "8"}, "run": "python prep.py"}
    body = user_request(task)
    assert json.loads(apply_policy(body))["task"] == json.loads(body)["task"]
    task["envs"]["MESHCTX_NPROC_PER_NODE"] = "4"
    assert mutated(user_request(task))["task"]["envs"]["MESHCTX_WORLD_SIZE"] == "8"
    task["envs"]["MESHCTX_NPROC_PER_NODE"] = "3"
    with pytest.raises(TaskRejected, match="world_size_not_divisible"):
        apply_policy(user_request(task))  # 2 × 3 ranks, tp 8


def test_plain_object_body_is_accepted_too() -> None:
    task = {"num_nodes": 2, "resources": {"accelerators": "A100:8"}, "envs": {"MESHCTX_TP_SIZE": "8"}}
    assert "MESHCTX_FINGERPRINT" in mutated(json.loads(user_request(task)))["task"]["envs"]


@pytest.mark.parametrize(
    ("task", "phrase"),
    [
        (
            {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "3"}},
            "world_size_not_divisible",
        ),
        (
            {
                "num_nodes": 2,
                "resources": {"any_of": [{"accelerators": "H100:8"}, {"accelerators": "A100:4"}]},
                "envs": {"MESHCTX_TP_SIZE": "8"},
            },
            "one GPU count per node",
        ),
        (
            {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "x"}},
            "MESHCTX_TP_SIZE",
        ),
        (
            {
                "num_nodes": 4,
                "resources": {"accelerators": "H100:8"},
                "envs": {"MESHCTX_TP_SIZE": "8", "MESHCTX_FINGERPRINT": "sha256:0"},
            },
            "render the task again",
        ),
    ],
)
def test_rejections_say_why(task: dict, phrase: str) -> None:
    with pytest.raises(TaskRejected, match=phrase):
        apply_policy(user_request(task))


@pytest.mark.parametrize("body", ["{not json", json.dumps({"task": 1}), json.dumps(["x"]), 7])
def test_malformed_requests_are_request_errors(body: object) -> None:
    with pytest.raises(PolicyRequestError):
        apply_policy(body)
