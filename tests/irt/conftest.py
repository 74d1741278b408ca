"""IRT flow fixtures: the whole Teller app (IRT on) over the Paystar sandbox, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from teller.app import Teller, start_teller
from teller.config import PaystarSettings
from teller.payments.cards import luhn_valid
from teller.payments.sandbox import SandboxHandle
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN, settings_for_tests
from tests.fixtures.initdata import sign_init_data
from tests.fixtures.teller_app import wait_for

POLL_INTERVAL_S = 0.05
WAIT_S = 15.0
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def make_card(bin6: str, serial: int) -> str:
    """A Luhn-valid 16-digit card number with this BIN."""
    body = bin6 + f"{serial:09d}"
    for check in range(10):
        if luhn_valid(body + str(check)):
            return body + str(check)
    raise AssertionError("unreachable")


async def until(predicate: Callable[[], Awaitable[Any]], *, timeout_s: float = WAIT_S) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded)."""
    return await wait_for(predicate, timeout_s=timeout_s)


@dataclass
class IrtApp:
    teller: Teller
    client: TestClient
    sandbox: SandboxHandle
    store: Any

    async def user(self, telegram_id: int) -> tuple[int, dict[str, str]]:
        response = await self.client.post("/api/v1/auth/telegram",
                                          json={"init_data": sign_init_data(BOT_TOKEN, telegram_id=telegram_id)})
        assert response.status == 200, await response.text()
        body = await response.json()
        return int(body["user"]["id"]), {"Authorization": f"Bearer {body['token']}"}

    async def irt_balance(self, user_id: int) -> int:
        for balance in await self.store.ledger.balances(user_id):
            if balance.asset == "IRT":
                return int(balance.available_minor)
        return 0

    async def account(self, name: str) -> dict[str, int]:
        return await self.store.ledger.account(name)

    async def count(self, table: str) -> int:
        row = await self.store.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
        return int(row["n"])

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        import json
        rows = await self.store.fetch_all("SELECT payload FROM outbox WHERE type = ? ORDER BY id", event_type)
        return [json.loads(r["payload"]) for r in rows]

    async def line_status(self, bank_reference: str) -> str | None:
        row = await self.store.fetch_one("SELECT status FROM statement_lines WHERE bank_reference = ?",
                                         bank_reference)
        return None if row is None else str(row["status"])


def irt_settings(paystar: PaystarSettings, **irt: Any) -> Any:
    return settings_for_tests(
        chains=[],
        paystar={"base_url": paystar.base_url, "application_id": paystar.application_id,
                 "access_password": paystar.access_password, "refresh_token": paystar.refresh_token,
                 "timeout_s": paystar.timeout_s, "retries_max": paystar.retries_max},
        irt={"statement_url": paystar.base_url, "statement_poll_interval_s": POLL_INTERVAL_S,
             "card_hash_secret": "c" * 32, **irt},
    )


@pytest.fixture
def irt_overrides(paystar_client: Any, statement_source: Any) -> dict[str, Any]:
    return {"paystar": paystar_client, "statement_source": statement_source, "statement_page_max": 5}


@pytest.fixture
async def irt_app(store: Any, paystar_sandbox: SandboxHandle, paystar_settings: PaystarSettings,
                  irt_overrides: dict[str, Any], log_stream: Any) -> AsyncIterator[IrtApp]:
    teller = await start_teller(irt_settings(paystar_settings), store=store, overrides=irt_overrides)
    client = TestClient(TestServer(teller.app, host="127.0.0.1"))
    try:
        await client.start_server()
        yield IrtApp(teller=teller, client=client, sandbox=paystar_sandbox, store=store)
    finally:
        await client.close()
        await teller.stop()
    assert await store.ledger.check_invariants() == []
