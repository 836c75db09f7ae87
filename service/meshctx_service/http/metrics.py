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
        self.admissions = Counter(
            "meshctx_admission_verdicts",
            "Admission (Kubernetes webhook) and SkyPilot policy verdicts: allowed, denied, or unchecked (the check "
            "could not be made or finish; answered as MESHCTX_ADMISSION_UNCHECKED says).",
            ["integration", "verdict"],
            registry=self.registry,
        )
        self.access_log_dropped = Counter(
            "meshctx_access_log_dropped_lines",
            "Access log lines dropped because the log's reader did not keep up (a stalled stderr pipe).",
            registry=self.registry,
        )
        for integration in ("kubernetes", "skypilot"):  # every series exists from the start (rate() needs a zero)
            for verdict in ("allowed", "denied", "unchecked"):
                self.admissions.labels(integration, verdict)

        # Label children by their labels: ``labels()`` takes a lock and checks its arguments on every call, and
        # every request is counted here. Routes are templates and statuses few, so these stay small.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._verdict_children: dict[tuple[str, bool], Counter] = {}
        self._problem_children: dict[tuple[str, str], Counter] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_report(self, endpoint: str, report: ValidationReport) -> None:
        self.observe_verdict(endpoint, report.valid, findings(report))

    def observe_verdict(self, endpoint: str, valid: bool, found: tuple[tuple[str, str], ...]) -> None:
        child = self._verdict_children.get((endpoint, valid))
        if child is None:
            child = self._verdict_children[(endpoint, valid)] = self.validations.labels(
                endpoint, "valid" if valid else "invalid"
            )
        child.inc()
        for key in found:
            problem = self._problem_children.get(key)
            if problem is None:
                problem = self._problem_children[key] = self.problems.labels(*key)
            problem.inc()

    def observe_admission(self, integration: str, verdict: str) -> None:
        self.admissions.labels(integration, verdict).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def findings(report: ValidationReport) -> tuple[tuple[str, str], ...]:
    """(code, severity) of every problem and warning: what the metrics count."""
    return tuple((p.code.value, p.severity.value) for p in (*report.problems, *report.warnings))
