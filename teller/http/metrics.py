"""Prometheus metrics, one registry per app (tests run many apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["HttpMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "teller_http_requests", "HTTP requests by route and status", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "teller_http_request_seconds", "HTTP request latency by route", ["method", "route"],
            registry=self.registry, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.actor_restarts = Counter(
            "teller_actor_restarts", "Actor restarts by supervisor path", ["path"], registry=self.registry,
        )
        self.mailbox = Gauge("teller_actor_mailbox", "Mailbox depth by actor path", ["path"], registry=self.registry)
        self.ledger_transfers = Gauge(
            "teller_ledger_transfers", "Ledger transfers written so far (highest transfer id)", registry=self.registry,
        )
        self.outbox_backlog = Gauge("teller_outbox_backlog", "Undelivered outbox events", registry=self.registry)
        self.outbox_oldest_age = Gauge(
            "teller_outbox_oldest_age_seconds", "Age of the oldest undelivered outbox event", registry=self.registry,
        )
        self.events = Gauge("teller_events", "Outbox relay and notifier counts since start", ["what"],
                            registry=self.registry)
        self.chain_lag = Gauge("teller_chain_lag_blocks", "Blocks behind the head", ["chain"], registry=self.registry)

        self._children: dict[tuple[str, str, int], tuple[object, object]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request; the label children are looked up once per (method, route, status), not per call."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()  # type: ignore[attr-defined]
        children[1].observe(seconds)  # type: ignore[attr-defined]

    def render(self) -> bytes:
        return generate_latest(self.registry)
