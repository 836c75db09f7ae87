"""Every refusal is problem+json from one set of handlers, and every code the service can send is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from meshctx.job_states import ACTIVE, ENDED, TRANSITIONS, JobState
from meshctx.plan import Code
from meshctx_service.app import create_app
from meshctx_service.auth import Role
from meshctx_service.auth.gate import Gate, needs
from meshctx_service.http.errors import ServiceError, install_error_handlers
from meshctx_service.http.metrics import Metrics
from meshctx_service.registry import ConflictError, RegistryError
from meshctx_service.settings import Settings
from meshctx_service.topology import routes as topology_routes

DOCS = Path(__file__).resolve().parents[2] / "docs" / "problem-codes.md"
TOKENS = json.dumps({"s3cret-0123456789": {"tenant": "team-a", "role": "read"}})
BODY = {"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 8}}


def test_validate_refuses_a_missing_token_with_no_registry_router_in_the_app() -> None:
    settings = Settings(tokens=TOKENS, open_validate=False)
    app = FastAPI()
    app.state.settings, app.state.metrics, app.state.gate = settings, Metrics(), Gate.from_settings(settings)
    app.state.answers = topology_routes.RecentAnswers()
    install_error_handlers(app)
    app.include_router(topology_routes.router, dependencies=[Depends(needs(Role.READ))])
    with TestClient(app, raise_server_exceptions=False) as client:
        refused = client.post("/v1/validate", json=BODY)
        assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["code"] == "unauthenticated"
        assert refused.json()["type"] == "urn:meshctx:problem:unauthenticated"
        assert client.post("/v1/validate", json=BODY, headers={"Authorization": "Bearer s3cret-0123456789"}).json()[
            "valid"
        ]


def _subclasses(cls: type[ServiceError]) -> list[type[ServiceError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _subclasses(sub))]


def test_every_code_is_documented() -> None:
    create_app(Settings())  # imports every module that defines an error
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    assert {c.value for c in Code} <= documented, {c.value for c in Code} - documented
    # Every service error's code is in the table, but for the bases that are never raised themselves.
    raised = {c.code for c in _subclasses(ServiceError) if c not in (ServiceError, RegistryError, ConflictError)}
    assert raised <= documented, raised - documented
    assert {"capacity_exceeded", "unauthenticated", "forbidden", "invalid_request", "registry_busy"} <= raised


def test_job_states_form_one_table() -> None:
    assert set(TRANSITIONS) == set(JobState)
    assert set(ACTIVE) | set(ENDED) == set(JobState) and not set(ACTIVE) & set(ENDED)
    assert all(state.active != state.ended for state in JobState)
    assert all(following in TRANSITIONS for targets in TRANSITIONS.values() for following in targets)


def test_every_422_naming_fields_has_one_shape(tmp_path: Path) -> None:
    """A body FastAPI cannot parse, a request the service refuses itself and a registry name it refuses: the same
    members in the same order, each with its ``code`` (before, FastAPI's 422 had no ``code`` and put ``errors``
    after ``instance``)."""
    shape = ["type", "title", "status", "detail", "code", "errors", "instance"]
    with TestClient(create_app(Settings(data_dir=tmp_path)), raise_server_exceptions=False) as client:
        unparsed = client.post("/v1/validate", json={**BODY, "tp": 8})
        refused = client.post("/v1/layout?rank=64", json=BODY)
        registry = client.put("/v1/clusters/-dash-first", json={"nodes": 4, "gpus_per_node": 8})
    for answer, code in ((unparsed, "invalid_request"), (refused, "invalid_request"), (registry, "invalid_input")):
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
        assert list(answer.json()) == shape, answer.text
        assert answer.json()["code"] == code
        assert answer.json()["type"] == "urn:meshctx:problem:" + code.replace("_", "-")
    assert unparsed.json()["errors"] == [{"field": "tp", "detail": "unknown field"}]
    assert [e["field"] for e in refused.json()["errors"]] == ["rank"]
    assert [e["field"] for e in registry.json()["errors"]] == ["name"]
