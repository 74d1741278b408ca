"""The HTTP series are plain counters rendered at scrape time: they must read exactly as the
prometheus_client Counter and Histogram they replace would have rendered the same requests."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from teller.http.metrics import LATENCY_BUCKETS_S, HttpMetrics

# On a bound, below the first, above the last, zero; several statuses and routes.
REQUESTS = [
    ("GET", "/api/v1/balances", 200, 0.003), ("GET", "/api/v1/balances", 200, 0.0025),
    ("GET", "/api/v1/balances", 401, 0.0004), ("GET", "unmatched", 404, 0.0),
    ("POST", "/api/v1/withdrawals", 202, 12.5), ("GET", "/api/v1/balances", 200, 1.0),
]


def _http_lines(text: bytes) -> list[str]:
    lines = [line for line in text.decode().splitlines() if "teller_http_" in line]
    return sorted(re.sub(r"^(teller_http_\w+_created\{.*\}) \S+$", r"\1 <t>", line) for line in lines)


def test_http_series_render_as_prometheus_client_would() -> None:
    metrics = HttpMetrics()
    registry = CollectorRegistry()
    requests = Counter("teller_http_requests", "HTTP requests by route and status", ["method", "route", "status"],
                       registry=registry)
    latency = Histogram("teller_http_request_seconds", "HTTP request latency by route", ["method", "route"],
                        registry=registry, buckets=LATENCY_BUCKETS_S)
    for method, route, status, seconds in REQUESTS:
        metrics.observe(method, route, status, seconds)
        requests.labels(method, route, str(status)).inc()
        latency.labels(method, route).observe(seconds)
    assert _http_lines(metrics.render()) == _http_lines(generate_latest(registry))


def test_no_requests_no_http_samples() -> None:
    text = HttpMetrics().render().decode()
    assert "# TYPE teller_http_requests_total counter" in text
    assert not [line for line in text.splitlines() if line.startswith("teller_http_")]


def test_a_client_cannot_mint_metric_series_with_made_up_methods() -> None:
    metrics = HttpMetrics()
    for i in range(50):
        metrics.observe(f"BREW{i}", "unmatched", 405, 0.001)
    metrics.observe("get", "unmatched", 404, 0.001)
    text = metrics.render().decode()
    assert "BREW" not in text
    assert text.count('teller_http_requests_total{method="OTHER",route="unmatched",status="405"} 50.0') == 1
