"""Prometheus metrics, one registry per app (tests run many apps in one process).

The series read off the /ops/status document (the reconciler, withdrawals, freezes, deposit
reversals) are made from it at each scrape (``observe_status``): a key the document does not have
renders no series, rather than a zero that would read as a fact.

The per-request series (requests by route and status, latency by route) are plain counters on the
hot path, turned into Prometheus samples only when ``/ops/metrics`` is scraped: a
``prometheus_client`` child takes a lock and walks its buckets in Python on every observation
(~2 us a request, most of the pipeline's own cost), while a scrape comes every few seconds. Every
observation happens on the event loop's thread, and so does the scrape, so nothing here is shared
across threads.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

__all__ = ["HttpMetrics", "CONTENT_TYPE", "LATENCY_BUCKETS_S", "status_families"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_REQUESTS = ("teller_http_requests", "HTTP requests by route and status")
_LATENCY = ("teller_http_request_seconds", "HTTP request latency by route")


class _RouteSeries:
    """One (method, route): requests by status, and the latency histogram (a count per bucket, the
    last one +Inf). Created times are kept as Prometheus' own children keep them."""

    __slots__ = ("by_status", "created_by_status", "buckets", "sum_s", "created_s")

    def __init__(self) -> None:
        self.by_status: dict[int, int] = {}
        self.created_by_status: dict[int, float] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.sum_s = 0.0
        self.created_s = time.time()


class _HttpCollector:
    """Renders the plain counters as the counter and histogram ``prometheus_client`` would have made."""

    def __init__(self, series: dict[tuple[str, str], _RouteSeries]) -> None:
        self._series = series
        self._bounds = [floatToGoString(b) for b in LATENCY_BUCKETS_S] + ["+Inf"]

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(*_REQUESTS, labels=["method", "route", "status"])
        yield HistogramMetricFamily(*_LATENCY, labels=["method", "route"])

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(*_REQUESTS, labels=["method", "route", "status"])
        latency = HistogramMetricFamily(*_LATENCY, labels=["method", "route"])
        for (method, route), series in list(self._series.items()):
            for status, count in series.by_status.items():
                requests.add_metric([method, route, str(status)], count, created=series.created_by_status[status])
            cumulative, running = [], 0
            for bound, count in zip(self._bounds, series.buckets):
                running += count
                cumulative.append((bound, running))
            latency.add_metric([method, route], cumulative, series.sum_s)
            latency.add_sample(f"{_LATENCY[0]}_created", {"method": method, "route": route}, series.created_s)
        yield requests
        yield latency


def _number(value: Any) -> float | None:
    """A count or a flag from the status document as a sample value; None for anything else."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _timestamp_s(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, Mapping) else {}


def status_families(doc: Mapping[str, Any]) -> list[Metric]:
    """The gauges the status document holds: each only when its key is there."""
    families: list[Metric] = []

    def gauge(name: str, documentation: str, value: float | None) -> None:
        if value is not None:
            families.append(GaugeMetricFamily(name, documentation, value=value))

    reconciler = _section(doc, "reconciler")
    gauge("teller_reconcile_last_run_timestamp_seconds", "When the reconciler last finished a pass (Unix time)",
          _timestamp_s(reconciler.get("last_run_at")))
    gauge("teller_reconcile_ok", "1 when the reconciler's last pass found the money in order, 0 when not",
          _number(reconciler.get("last_ok")) if isinstance(reconciler.get("last_ok"), bool) else None)
    violations = reconciler.get("violations")
    gauge("teller_reconcile_violations", "Violations the reconciler has found and that still stand",
          float(len(violations)) if isinstance(violations, list) else None)
    gauge("teller_reconcile_pending_receipts", "Finished rows whose transaction the node does not know yet",
          _number(reconciler.get("pending_receipts")))
    gauge("teller_freezes_active", "Active withdrawal freezes", _number(_section(doc, "freezes").get("active")))
    gauge("teller_deposit_reversals_open", "Credited deposits that left the chain, waiting for an operator",
          _number(_section(doc, "deposit_reversals").get("open")))
    chains = _section(doc, "withdrawals").get("chains")
    for key, name, documentation in (("parked", "teller_withdrawals_parked", "Withdrawals parked after failing"),
                                     ("incidents", "teller_withdrawals_incidents", "Withdrawals in an incident")):
        family = GaugeMetricFamily(name, documentation, labels=["chain"])
        for chain in chains if isinstance(chains, list) else ():
            value = _number(chain.get(key)) if isinstance(chain, Mapping) else None
            if value is not None and isinstance(chain.get("chain"), str):
                family.add_metric([chain["chain"]], value)
        if family.samples:
            families.append(family)
    return families


class _StatusCollector:
    """Yields the families of the last status document seen (one per scrape, on the loop's thread)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.families


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._series: dict[tuple[str, str], _RouteSeries] = {}
        self._bounds_s = LATENCY_BUCKETS_S
        self.registry.register(_HttpCollector(self._series))  # type: ignore[arg-type]
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
        self._status = _StatusCollector()
        self.registry.register(self._status)  # type: ignore[arg-type]

    def observe_status(self, doc: Mapping[str, Any]) -> None:
        """The /ops/status document of this scrape: its gauges replace the last one's."""
        self._status.families = status_families(doc)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request. ``route`` is a route template or "unmatched", never a raw path; a method outside
        HTTP's standard set counts as OTHER (a client must not mint new series at will)."""
        if method not in _METHODS:
            method = "OTHER"
        series = self._series.get((method, route))
        if series is None:
            series = self._series[(method, route)] = _RouteSeries()
        count = series.by_status.get(status)
        if count is None:
            series.created_by_status[status] = time.time()
            count = 0
        series.by_status[status] = count + 1
        series.buckets[bisect_left(self._bounds_s, seconds)] += 1  # le: a value on a bound counts in it
        series.sum_s += seconds

    def render(self) -> bytes:
        return generate_latest(self.registry)
