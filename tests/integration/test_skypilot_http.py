"""The SkyPilot admin-policy endpoint spoken as SkyPilot's ``RestfulAdminPolicy`` speaks it:
``json=UserRequest.encode()`` (a JSON string) in, ``MutatedUserRequest.decode(response.json())`` out,
and a 400 whose text is shown to the user on reject."""

from __future__ import annotations

import json
from typing import Any

import yaml

from meshctx.config import ParallelismSizes
from meshctx.plan import plan_mesh
from tests.deploy.test_skypilot_policy import user_request
from tests.integration.conftest import Post

PATH = "/v1/policy/skypilot"


def decoded(answer: Any) -> dict[str, Any]:
    """What ``MutatedUserRequest.decode`` reads: ``response.json()`` is a string holding the JSON object."""
    assert answer.status_code == 200, answer.text
    text = answer.json()
    assert isinstance(text, str)
    body = json.loads(text)
    assert set(body) == {"task", "skypilot_config"} and all(isinstance(v, str) for v in body.values())
    return {"task": yaml.safe_load(body["task"]), "skypilot_config": yaml.safe_load(body["skypilot_config"])}


def test_valid_task_gets_world_size_dp_and_fingerprint(post: Post) -> None:
    task = {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "8"}}
    out = decoded(post(PATH, json=user_request(task)))
    envs = out["task"]["envs"]
    assert (envs["MESHCTX_WORLD_SIZE"], envs["MESHCTX_DP_SIZE"]) == ("16", "2")
    assert envs["MESHCTX_FINGERPRINT"] == plan_mesh("fsdp2", ParallelismSizes(tp_size=8), world_size=16).fingerprint()
    assert out["skypilot_config"] == {"allowed_clouds": ["kubernetes"]}


def test_task_without_meshctx_envs_passes_unchanged(post: Post) -> None:
    task = {"name": "t", "num_nodes": 3, "resources": {"accelerators": "H100:8"}, "run": "echo hi"}
    body = user_request(task)
    assert json.loads(post(PATH, json=body).json())["task"] == json.loads(body)["task"]


def test_task_rendered_by_the_api_is_accepted(post: Post) -> None:
    render = {"strategy": "fsdp2", "nnodes": 4, "nproc_per_node": 8, "sizes": {"tp_size": 8}, "accelerator": "H100"}
    task = post("/v1/render/skypilot", json=render).json()["rendering"]["data"]
    envs = decoded(post(PATH, json=user_request(task)))["task"]["envs"]
    assert envs["MESHCTX_FINGERPRINT"] == task["envs"]["MESHCTX_FINGERPRINT"]


def test_invalid_task_is_a_400_with_a_plain_text_reason(post: Post) -> None:
    task = {"num_nodes": 2, "resources": {"accelerators": "H100:8"}, "envs": {"MESHCTX_TP_SIZE": "3"}}
    answer = post(PATH, json=user_request(task))
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/plain")
    assert answer.text.startswith("meshctx: 2 nodes × 8 GPUs: invalid topology: world_size_not_divisible")
    assert "Fix:" in answer.text
    two_counts = {
        "num_nodes": 2,
        "resources": {"accelerators": {"H100": 8, "A100": 4}},
        "envs": {"MESHCTX_TP_SIZE": "8"},
    }
    assert "resources.accelerators must name one GPU count per node" in post(PATH, json=user_request(two_counts)).text


def test_body_that_is_not_a_user_request_is_a_422_problem(post: Post) -> None:
    for body, field in (("{not json", "body"), ({"task": 1, "skypilot_config": ""}, "task"), ([1], "body")):
        answer = post(PATH, json=body)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", answer.text
        assert field in {e["field"] for e in answer.json()["errors"]}, answer.text
