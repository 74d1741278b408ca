"""The pipeline decides by path what a request needs, and counts every answer by route template."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from teller.assets import AssetRegistry
from teller.http import Route, Services, build_app
from teller.http.auth import Authenticator
from teller.http.metrics import HttpMetrics
from teller.http.middleware import USER_ID
from tests.fixtures.http import OPS_TOKEN, settings_for_tests


async def _thing(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["id"], "user": request[USER_ID]})


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def client(store: Any) -> AsyncIterator[tuple[TestClient, HttpMetrics, Authenticator]]:
    settings = settings_for_tests()
    metrics, auth = HttpMetrics(), Authenticator(settings.auth)
    services = Services(settings=settings, store=store, assets=AssetRegistry.from_settings(settings), auth=auth,
                        metrics=metrics)
    extra = [Route("GET", "/api/v1/things/{id}", _thing, "A templated route", "test"),
             Route("GET", "/api/v1/boom", _boom, "A route with a bug", "test")]
    async with TestClient(TestServer(build_app(services, extra_routes=extra), host="127.0.0.1")) as test_client:
        yield test_client, metrics, auth


def _count(metrics: HttpMetrics, method: str, route: str, status: int) -> float:
    value = metrics.registry.get_sample_value("teller_http_requests_total",
                                              {"method": method, "route": route, "status": str(status)})
    return value or 0.0


async def test_a_templated_route_needs_a_token_and_is_counted_by_its_template(client: Any) -> None:
    api, metrics, auth = client
    assert (await api.get("/api/v1/things/7")).status == 401
    response = await api.get("/api/v1/things/7", headers={"Authorization": f"Bearer {auth.issue_token('42')}"})
    assert await response.json() == {"id": "7", "user": 42}
    response = await api.get("/api/v1/things/8", headers={"Authorization": f"Bearer {auth.issue_token('u-1')}"})
    assert response.status == 401  # a subject that is not a user id
    assert _count(metrics, "GET", "/api/v1/things/{id}", 200) == 1
    assert _count(metrics, "GET", "/api/v1/things/{id}", 401) == 2


async def test_unmatched_paths_are_judged_by_path_and_counted_as_unmatched(client: Any) -> None:
    api, metrics, _ = client
    assert (await api.get("/api/v1/nope")).status == 401  # unauthenticated callers learn nothing
    missing = await api.get("/api/v2/nope")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    assert (await api.get("/ops/nope")).status == 401
    assert (await api.get("/ops/nope", headers={"Authorization": f"Bearer {OPS_TOKEN}"})).status == 404
    assert (await api.get("/nope")).status == 404
    assert _count(metrics, "GET", "unmatched", 401) == 2
    assert _count(metrics, "GET", "unmatched", 404) == 3


async def test_public_routes_need_no_token_and_a_bug_is_a_bare_500(client: Any) -> None:
    api, metrics, auth = client
    assert (await api.get("/api/v1/config")).status == 200
    assert (await api.get("/healthz")).status == 200
    response = await api.get("/api/v1/boom", headers={"Authorization": f"Bearer {auth.issue_token('42')}"})
    assert response.status == 500
    assert await response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert _count(metrics, "GET", "/api/v1/config", 200) == 1
    assert _count(metrics, "GET", "/api/v1/boom", 500) == 1
