"""Prometheus metrics: HTTP requests by route and status, and what the validations found.

Each app gets its own registry, so several apps (tests) never share counters. With several uvicorn
workers each process reports its own numbers; scrape them per worker or run one worker per pod.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from meshctx.plan import ValidationReport

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "meshctx_http_requests", "HTTP requests served.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "meshctx_http_request_duration_seconds",
            "Time from request start to the last response byte.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.validations = Counter(
            "meshctx_validations",
            "Topologies checked, by endpoint and result.",
            ["endpoint", "result"],
            registry=self.registry,
        )
        self.problems = Counter(
            "meshctx_validation_problems",
            "Problems and warnings found in checked topologies, by code.",
            ["code", "severity"],
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_report(self, endpoint: str, report: ValidationReport) -> None:
        self.observe_verdict(endpoint, report.valid, findings(report))

    def observe_verdict(self, endpoint: str, valid: bool, found: tuple[tuple[str, str], ...]) -> None:
        self.validations.labels(endpoint, "valid" if valid else "invalid").inc()
        for code, severity in found:
            self.problems.labels(code, severity).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def findings(report: ValidationReport) -> tuple[tuple[str, str], ...]:
    """(code, severity) of every problem and warning: what the metrics count."""
    return tuple((p.code.value, p.severity.value) for p in (*report.problems, *report.warnings))
