"""Ops endpoints: liveness, readiness, the supervisor tree and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from teller.http.context import SERVICES, Services
from teller.http.metrics import CONTENT_TYPE
from teller.http.routing import Route
from teller.http.schemas import ref
from teller.log import redact_text

__all__ = ["routes", "status_document"]

READY_PROBE_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    problems = []
    try:
        async with asyncio.timeout(READY_PROBE_TIMEOUT_S):
            await services.store.fetch_one("SELECT 1 AS one")
    except Exception:  # any failure to reach the DB means not ready; the reason goes to the log
        problems.append("database unreachable")
    if services.tree is not None and not services.tree.running:
        problems.append("supervisor tree not running")
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def status_document(services: Services) -> dict[str, Any]:
    tree = services.tree.status()["tree"] if services.tree is not None else _empty_tree()
    for _, node in _walk(tree):  # a crash's text is not a log line, but it leaves the process the same way
        failure = node.get("last_failure")
        if failure and isinstance(failure.get("error"), str):
            failure["error"] = redact_text(failure["error"])
    doc: dict[str, Any] = {
        "node": services.settings.server.node,
        "uptime_s": round(time.monotonic() - services.started_at_s, 3),
        "tree": tree,
    }
    if services.extra_status is not None:
        doc.update(await services.extra_status())
    return doc


def _empty_tree() -> dict[str, Any]:
    return {"name": "root", "kind": "supervisor", "strategy": "one_for_one", "state": "stopped", "restarts": 0,
            "last_failure": None, "mailbox": 0, "processed": 0, "children": []}


async def ops_status(request: web.Request) -> web.Response:
    return web.json_response(await status_document(request.app[SERVICES]))


def _walk(node: dict[str, Any], prefix: str = ""):  # type: ignore[no-untyped-def]
    path = f"{prefix}/{node['name']}"
    yield path, node
    for child in node.get("children", []):
        yield from _walk(child, path)


async def ops_metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    doc = await status_document(services)
    for path, node in _walk(doc["tree"]):
        services.metrics.mailbox.labels(path).set(node.get("mailbox", 0))
    outbox = doc.get("outbox") or {}
    services.metrics.outbox_backlog.set(outbox.get("backlog", 0))
    services.metrics.outbox_oldest_age.set(outbox.get("oldest_age_s") or 0)
    events = doc.get("events") or {}
    for section in ("relay", "notifications"):
        for name, value in (events.get(section) or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                services.metrics.events.labels(f"{section}_{name}").set(value)
    # max(id) rather than count(*): constant time on a large table, and ids only grow.
    row = await services.store.fetch_one("SELECT max(id) AS n FROM transfers")
    services.metrics.ledger_transfers.set((row or {}).get("n") or 0)
    for chain in doc.get("chains", []):
        if chain.get("lag_blocks") is not None:
            services.metrics.chain_lag.labels(chain["chain"]).set(chain["lag_blocks"])
    services.metrics.observe_status(doc)   # the reconciler, withdrawals, freezes, deposit reversals
    return web.Response(body=services.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def routes() -> list[Route]:
    return [
        Route("GET", "/healthz", healthz, "The process is alive", "ops", security=None,
              responses={200: ref("Health")}),
        Route("GET", "/readyz", readyz, "The database is reachable and the tree runs", "ops", security=None,
              responses={200: ref("Health"), 503: ref("Health")}),
        Route("GET", "/ops/status", ops_status, "The supervisor tree, chain lag and outbox backlog", "ops",
              security="ops", responses={200: ref("Status")}),
        Route("GET", "/ops/metrics", ops_metrics, "Prometheus metrics", "ops", security="ops",
              responses={200: {"type": "string"}}, content_type="text/plain"),
    ]
