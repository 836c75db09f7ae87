"""``POST /v1/validate``'s direct path (``http/fast_paths.py``, answered before FastAPI's stack) makes the same
OpenTelemetry server span FastAPI makes for every other route: named ``POST /v1/validate``, with its route and
status (with ``MESHCTX_FAST_PATHS=off``, FastAPI's route makes the same). The spans are collected by a small
recording tracer provider (the OpenTelemetry SDK is not a dependency); FastAPI's own telemetry code makes them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from meshctx_service.app import create_app
from meshctx_service.settings import Settings


class RecordedSpan(NonRecordingSpan):
    def __init__(self, name: str, attributes: Mapping[str, Any] | None, sink: list[RecordedSpan]) -> None:
        super().__init__(SpanContext(trace_id=1, span_id=len(sink) + 1, is_remote=False, trace_flags=TraceFlags(1)))
        self.name, self.attributes, self.ended = name, dict(attributes or {}), False
        sink.append(self)

    def is_recording(self) -> bool:
        return True

    def update_name(self, name: str) -> None:
        self.name = name

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)

    def end(self, end_time: int | None = None) -> None:
        self.ended = True


class RecordingTracer(trace.Tracer):
    def __init__(self, sink: list[RecordedSpan]) -> None:
        self.sink = sink

    def start_span(self, name: str, *args: Any, attributes: Any = None, **kwargs: Any) -> trace.Span:
        return RecordedSpan(name, attributes, self.sink)

    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return trace.use_span(self.start_span(name, attributes=kwargs.get("attributes")), end_on_exit=True)


class RecordingProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return RecordingTracer(self.spans)


@pytest.fixture(params=[True, False], ids=["fast paths", "MESHCTX_FAST_PATHS=off"])
def traced(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, RecordingProvider]]:
    provider = RecordingProvider()
    app = create_app(Settings(data_dir=tmp_path, access_log=False, fast_paths=request.param))
    app._telemetry["tracer_provider"] = provider  # FastAPI(telemetry={"tracer_provider": ...}), after the fact
    with TestClient(app) as client:
        yield client, provider


def _server_spans(spans: Sequence[RecordedSpan]) -> list[tuple[str, object, object]]:
    return [
        (s.name, s.attributes.get("http.route"), s.attributes.get("http.response.status_code"))
        for s in spans
        if s.ended and "http.request.method" in s.attributes
    ]


def test_the_direct_validate_path_makes_a_server_span_like_every_route(
    traced: tuple[TestClient, RecordingProvider],
) -> None:
    client, provider = traced
    body = {"strategy": "fsdp2", "world_size": 64, "sizes": {"tp_size": 8}}
    assert client.post("/v1/validate", json=body).json()["valid"] is True
    assert client.post("/v1/layout", json=body).status_code == 200
    assert client.post("/v1/validate", json={"world_size": "x"}).status_code == 422
    spans = _server_spans(provider.spans)
    assert ("POST /v1/validate", "/v1/validate", 200) in spans
    assert ("POST /v1/layout", "/v1/layout", 200) in spans
    assert ("POST /v1/validate", "/v1/validate", 422) in spans
