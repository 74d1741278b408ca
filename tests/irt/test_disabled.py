"""Without [paystar] (or [irt]) the IRT routes answer 503 feature_disabled and no payment actor runs."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from teller.app import start_teller
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN, settings_for_tests
from tests.fixtures.initdata import sign_init_data


async def test_irt_routes_are_503_when_paystar_is_not_configured(store: Any) -> None:
    teller = await start_teller(settings_for_tests(chains=[]), store=store)  # [irt] present, no [paystar]
    try:
        async with TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
            auth = await client.post("/api/v1/auth/telegram",
                                     json={"init_data": sign_init_data(BOT_TOKEN, telegram_id=5001)})
            headers = {"Authorization": f"Bearer {(await auth.json())['token']}"}
            ops = {"Authorization": f"Bearer {OPS_TOKEN}"}
            calls = [
                client.post("/api/v1/cards", json={"card_number": "6037991234567893"}, headers=headers),
                client.get("/api/v1/cards", headers=headers),
                client.delete("/api/v1/cards/1", headers=headers),
                client.post("/api/v1/ibans", json={"iban": "IR820540102680020817909002"}, headers=headers),
                client.get("/api/v1/ibans", headers=headers),
                client.get("/api/v1/identity", headers=headers),
                client.post("/api/v1/identity/contact", json={"contact": "x"}, headers=headers),
                client.post("/api/v1/identity/national-code", json={"national_code": "0012345679"}, headers=headers),
                client.get("/api/v1/irt/deposit-info", headers=headers),
                client.get("/api/v1/irt/deposits", headers=headers),
                client.get("/ops/irt/unmatched", headers=ops),
                client.post("/ops/irt/unmatched/1/assign", json={"user_id": "1", "operator": "ops"}, headers=ops),
            ]
            for call in calls:
                response = await call
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "feature_disabled"
            payments = next(n for n in teller.tree.status()["tree"]["children"] if n["name"] == "payments")
            assert payments["children"] == []
            spec = await (await client.get("/api/v1/openapi.json", headers=headers)).json()
            assert "/api/v1/cards" in spec["paths"] and "/ops/irt/unmatched/{id}/assign" in spec["paths"]
    finally:
        await teller.stop()
    assert await store.fetch_one("SELECT COUNT(*) AS n FROM cards") == {"n": 0}
    assert await store.fetch_one("SELECT COUNT(*) AS n FROM identities") == {"n": 0}
