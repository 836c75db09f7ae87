"""schemathesis against the registry operations of the live OpenAPI document, with a valid admin token:
no 5xx, every status, content type and body as documented; negative data is rejected."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.servers import LiveServer, start_server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [
    ("/v1/clusters/{name}", "PUT"),
    ("/v1/clusters/{name}", "GET"),
    ("/v1/clusters/{name}", "DELETE"),
    ("/v1/clusters", "GET"),
    ("/v1/jobs/{job_id}", "PUT"),
    ("/v1/jobs/{job_id}", "GET"),
    ("/v1/jobs/{job_id}", "DELETE"),
    ("/v1/jobs", "GET"),
    ("/v1/jobs/{job_id}/state", "PUT"),
    ("/v1/jobs/{job_id}/attestations", "POST"),
    ("/v1/jobs/{job_id}/attestations", "GET"),
]


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("schema")
    tokens = tmp / "tokens.yaml"
    tokens.write_text("admin-s-0123456789: {tenant: s, role: admin}\n")
    server = start_server(tmp, MESHCTX_ACCESS_LOG="false", MESHCTX_DATA_DIR=str(tmp), MESHCTX_TOKENS_FILE=str(tokens))
    yield server
    server.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_registry_operation_conforms(registry_server: LiveServer, path: str, method: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{registry_server.url}/openapi.json")
    operation = schema[path][method]
    checks: list[Callable[..., object]] = list(CHECKS)
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    calls: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": "Bearer admin-s-0123456789"}
        response = case.call_and_validate(checks=checks)
        calls.append(response.status_code)

    check()
    assert calls and all(status < 500 for status in calls)
    assert any(status not in (401, 403) for status in calls)  # the token got the cases past auth
