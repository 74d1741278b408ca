"""The served OpenAPI document covers every route of ../shared/API.md (the contract), with all flows on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from teller.app import start_teller
from teller.config import PaystarSettings
from tests.fixtures.chain import DevNet
from tests.fixtures.http import settings_for_tests

API_MD = Path(__file__).resolve().parents[3] / "shared" / "API.md"
SIGNER_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
ROUTE_RE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)")


def contract_routes() -> set[tuple[str, str]]:
    return {(method, path) for method, path in ROUTE_RE.findall(API_MD.read_text())}


@pytest.mark.skipif(not API_MD.exists(), reason="shared/API.md is not beside this checkout")
async def test_every_contract_route_is_served_and_documented(store: Any, devnet: DevNet,
                                                            paystar_settings: PaystarSettings) -> None:
    settings = settings_for_tests(
        signer={"mnemonic": SIGNER_MNEMONIC},
        chains=[{"name": "ethereum", "chain_id": devnet.chain_id, "rpc_url": devnet.url,
                 "native": {"symbol": "ETH", "decimals": 18}}],
        paystar={"base_url": paystar_settings.base_url, "application_id": "a", "access_password": "p",
                 "refresh_token": "r"},
        telegram={"mode": "webhook", "webhook_secret": "webhook-secret-for-tests",
                  "webhook_path_secret": "webhook-path-secret-for-tests"},
    )
    teller = await start_teller(settings, store=store)
    try:
        async with TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
            doc = await (await client.get("/api/v1/openapi.json")).json()
    finally:
        await teller.stop()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    expected = contract_routes()
    assert len(expected) >= 20, "the contract parser found too few routes"
    assert expected - documented == set()
