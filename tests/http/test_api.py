"""The gateway over a real loopback server and a real store (both backends)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from teller.assets import AssetRegistry
from teller.http import Services, build_app
from teller.http.auth import Authenticator
from teller.http.metrics import HttpMetrics
from teller.storage import chain_account, user_account
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN, settings_for_tests
from tests.fixtures.initdata import sign_init_data


async def test_sign_in_creates_the_user_once_and_returns_a_bearer_token(api: TestClient) -> None:
    first = await (await api.post("/api/v1/auth/telegram", json={"init_data": sign_init_data(BOT_TOKEN)})).json()
    again = await (await api.post("/api/v1/auth/telegram", json={"init_data": sign_init_data(BOT_TOKEN)})).json()
    assert first["token_type"] == "Bearer" and first["expires_in"] > 0
    assert first["user"]["id"] == again["user"]["id"]
    assert first["user"]["telegram_id"] == 4242 and first["user"]["username"] == "alice"
    me = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {first['token']}"})
    assert (await me.json())["id"] == first["user"]["id"]


@pytest.mark.parametrize("body, status, code", [
    ({"init_data": "user=%7B%7D&hash=00"}, 401, "invalid_init_data"),
    ({"init_data": 5}, 401, "invalid_init_data"),
    ({}, 401, "invalid_init_data"),
])
async def test_bad_init_data_is_401_and_creates_nobody(api: TestClient, store: Any, body: Any, status: int,
                                                        code: str) -> None:
    response = await api.post("/api/v1/auth/telegram", json=body)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert await store.fetch_one("SELECT COUNT(*) AS n FROM users") == {"n": 0}


async def test_gateway_header_without_a_trusted_gateway_is_401(api: TestClient) -> None:
    response = await api.post("/api/v1/auth/telegram", headers={"X-Telegram-Id": "5"})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "untrusted_gateway"


@pytest.mark.parametrize("raw, status", [
    (b"{not json", 400), (b"[1, 2]", 400), (b"\xff\xfe", 400), (b"", 400), (b'{"init_data": NaN}', 400),
])
async def test_malformed_bodies_are_400(api: TestClient, raw: bytes, status: int) -> None:
    response = await api.post("/api/v1/auth/telegram", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == status
    assert (await response.json())["error"]["code"] == "malformed_request"


async def test_a_huge_body_is_413(api: TestClient) -> None:
    response = await api.post("/api/v1/auth/telegram", data=b"{" + b" " * 200_000 + b"}",
                              headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic abc",
                                    "Bearer " + jwt.encode({"sub": "1"}, None, algorithm="none")])
async def test_api_routes_need_a_valid_token(api: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = await api.get("/api/v1/balances", headers=headers)
    assert response.status == 401
    assert "error" in await response.json()


async def test_balances_show_what_the_ledger_credited(api: TestClient, store: Any, sign_in: Any) -> None:
    headers = await sign_in()
    user_id = int(headers["X-User-Id"])
    await store.ledger.transfer(debit=chain_account("ethereum", "ethereum:USDT"),
                                credit=user_account(user_id, "ethereum:USDT"),
                                asset="ethereum:USDT", amount=10_500_000, key="test:credit:1")
    body = await (await api.get("/api/v1/balances", headers=headers)).json()
    by_asset = {(b["asset"], b["chain"]): b for b in body["balances"]}
    assert by_asset[("USDT", "ethereum")] == {"asset": "USDT", "chain": "ethereum", "available": "10.5",
                                              "held": "0", "decimals": 6}
    assert by_asset[("ETH", "ethereum")]["available"] == "0"
    assert by_asset[("IRT", None)]["available"] == "0"


async def test_transactions_page_newest_first_with_a_cursor(api: TestClient, store: Any, sign_in: Any) -> None:
    headers = await sign_in()
    user_id = int(headers["X-User-Id"])
    for i in range(5):
        await store.ledger.transfer(debit=chain_account("ethereum", "ethereum:ETH"),
                                    credit=user_account(user_id, "ethereum:ETH"),
                                    asset="ethereum:ETH", amount=10**18 + i, key=f"test:credit:{i}")
    page1 = await (await api.get("/api/v1/transactions?limit=3", headers=headers)).json()
    assert [t["amount"] for t in page1["transactions"]] == ["1.000000000000000004", "1.000000000000000003",
                                                            "1.000000000000000002"]
    assert all(t["kind"] == "deposit" and t["direction"] == "credit" for t in page1["transactions"])
    page2 = await (await api.get(f"/api/v1/transactions?limit=3&cursor={page1['next_cursor']}",
                                 headers=headers)).json()
    assert [t["amount"] for t in page2["transactions"]] == ["1.000000000000000001", "1"]
    assert page2["next_cursor"] is None
    for bad in ("limit=0", "limit=101", "limit=abc", "limit=-1", "cursor=%00%01"):
        response = await api.get(f"/api/v1/transactions?{bad}", headers=headers)
        assert response.status == 422, bad


async def test_one_users_history_is_not_anothers(api: TestClient, store: Any, sign_in: Any) -> None:
    alice = await sign_in(telegram_id=1)
    bob = await sign_in(telegram_id=2)
    await store.ledger.transfer(debit=chain_account("ethereum", "ethereum:ETH"),
                                credit=user_account(int(alice["X-User-Id"]), "ethereum:ETH"),
                                asset="ethereum:ETH", amount=5, key="test:alice")
    page = await (await api.get("/api/v1/transactions", headers=bob)).json()
    assert page["transactions"] == []


async def test_unknown_routes_are_json_404_and_wrong_methods_405(api: TestClient, sign_in: Any) -> None:
    assert (await api.get("/api/v1/nope")).status == 401  # unauthenticated callers learn nothing
    response = await api.get("/api/v1/nope", headers=await sign_in())
    assert response.status == 404 and "error" in await response.json()
    response = await api.delete("/healthz")
    assert response.status == 405 and "error" in await response.json()


async def test_ops_routes_need_the_ops_token(api: TestClient, sign_in: Any) -> None:
    user_headers = await sign_in()
    assert (await api.get("/ops/status")).status == 401
    assert (await api.get("/ops/status", headers={"Authorization": user_headers["Authorization"]})).status == 401
    response = await api.get("/ops/status", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert response.status == 200
    doc = await response.json()
    assert doc["tree"]["name"] == "root" and doc["uptime_s"] >= 0
    metrics = await api.get("/ops/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    text = await metrics.text()
    assert metrics.status == 200 and "teller_http_requests_total" in text and "teller_ledger_transfers" in text


async def test_health_and_readiness(api: TestClient) -> None:
    assert (await api.get("/healthz")).status == 200
    assert (await (await api.get("/readyz")).json())["status"] == "ready"


async def test_rate_limits_answer_429_with_retry_after(store: Any) -> None:
    settings = settings_for_tests(server={"rate_limit_per_ip_per_s": 0.5, "rate_limit_burst": 2})
    services = Services(settings=settings, store=store, assets=AssetRegistry.from_settings(settings),
                        auth=Authenticator(settings.auth), metrics=HttpMetrics())
    async with TestClient(TestServer(build_app(services), host="127.0.0.1")) as client:
        statuses = [(await client.get("/api/v1/config")).status for _ in range(8)]
        assert 429 in statuses
        limited = await client.get("/api/v1/config")
        assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
        assert (await limited.json())["error"]["code"] == "rate_limited"


async def test_openapi_lists_every_route_the_server_serves(api: TestClient) -> None:
    doc = await (await api.get("/api/v1/openapi.json")).json()
    served = {
        (route.method, route.resource.canonical)
        for route in api.server.app.router.routes()
        if route.method != "HEAD" and route.resource is not None and not route.resource.canonical.startswith("/static")
    }
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert served == documented
    for path in ("/api/v1/auth/telegram", "/api/v1/me", "/api/v1/assets", "/api/v1/balances",
                 "/api/v1/transactions", "/ops/status", "/ops/metrics", "/healthz", "/readyz", "/"):
        assert path in doc["paths"], path
