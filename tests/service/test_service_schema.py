"""schemathesis against the live server's own OpenAPI document: no 5xx, every response as documented.

Uses schemathesis's Python API with Hypothesis directly (its lazy pytest fixture loader does not run
under this pytest); bounded and derandomized, positive and negative data for every operation.
"""

from __future__ import annotations

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

from tests.support.servers import LiveServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
OPERATIONS = [
    ("/v1/validate", "POST", 50, POSITIVE),
    ("/v1/validate", "POST", 50, NEGATIVE),
    ("/v1/layout", "POST", 50, POSITIVE),
    ("/v1/layout", "POST", 50, NEGATIVE),
    ("/v1/render/{target}", "POST", 50, POSITIVE),
    ("/v1/render/{target}", "POST", 50, NEGATIVE),
    ("/v1/admission/kubernetes", "POST", 50, POSITIVE),
    ("/v1/admission/kubernetes", "POST", 50, NEGATIVE),
    ("/v1/policy/skypilot", "POST", 50, POSITIVE),
    ("/v1/policy/skypilot", "POST", 50, NEGATIVE),
    ("/v1/place", "POST", 50, POSITIVE),
    ("/v1/place", "POST", 50, NEGATIVE),
    ("/v1/topology/import", "POST", 50, POSITIVE),
    ("/v1/topology/import", "POST", 50, NEGATIVE),
    ("/livez", "GET", 3, POSITIVE),  # operations without inputs have no negative data
    ("/readyz", "GET", 3, POSITIVE),
    ("/metrics", "GET", 3, POSITIVE),
]


@pytest.mark.parametrize(("path", "method", "examples", "mode"), OPERATIONS)
def test_operation_conforms_to_its_schema(
    live_server: LiveServer, path: str, method: str, examples: int, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    operation = schema[path][method]
    # The webhook answers a review that breaks its schema but names its uid with a 200 review denying it (a
    # problem response would be a failed call, and failurePolicy Ignore would admit the workload unchecked).
    checks = [c for c in CHECKS if not (path == "/v1/admission/kubernetes" and c is negative_data_rejection)]
    calls = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(checks=checks)
        if path == "/v1/admission/kubernetes" and response.status_code == 200 and mode is GenerationMode.NEGATIVE:
            assert response.json()["response"]["allowed"] is False  # a schema-violating review is never admitted
        calls.append(response.status_code)

    check()
    assert calls and all(status < 500 for status in calls)
    if mode is GenerationMode.POSITIVE and method == "POST":
        assert 200 in calls  # the generator reached the planner, not only the validator
