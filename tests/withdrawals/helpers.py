"""Helpers for the withdrawal tests: settings on a dev chain, a running Teller, a signed-in client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


from teller.config import Settings
from teller.storage import Store, chain_account, user_account
from tests.fixtures.chain import TEST_MNEMONIC
from tests.fixtures.http import settings_for_tests
from tests.fixtures.teller_app import POLL_S, RunningTeller, teller_and_client, wait_for  # noqa: F401 - wait_for for the tests

CHAIN = "devnet"
ETH = f"{CHAIN}:ETH"
USDT = f"{CHAIN}:USDT"
DEAD_RPC = "http://127.0.0.1:1"
RECIPIENT = "0x1111111111111111111111111111111111111111"


def chain_table(*, rpc_url: str, token: str, chain_id: int = 31337, **extra: Any) -> dict[str, Any]:
    return {
        "name": CHAIN, "chain_id": chain_id, "rpc_url": rpc_url, "confirmations": 2, "poll_interval_s": POLL_S,
        "rpc_timeout_s": 2.0,
        "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0.0005"},
        "tokens": [{"symbol": "USDT", "contract": token, "decimals": 6, "min_withdrawal": "1",
                    "withdrawal_fee": "0.5"}],
        **extra,
    }


def withdrawal_settings(*, rpc_url: str = DEAD_RPC, token: str = "0x" + "ab" * 20,
                        limits: dict[str, str] | None = None, **chain_extra: Any) -> Settings:
    return settings_for_tests(
        chains=[chain_table(rpc_url=rpc_url, token=token, **chain_extra)],
        signer={"mnemonic": TEST_MNEMONIC},
        limits={"withdrawal_daily_per_user": limits or {}},
    )


class Running(RunningTeller):

    async def credit(self, user_id: int, asset: str, amount_minor: int, *, key: str = "") -> None:
        await self.store.ledger.transfer(debit=chain_account(CHAIN, asset), credit=user_account(user_id, asset),
                                         asset=asset, amount=amount_minor, key=key or f"credit:{user_id}:{asset}")

    async def balance(self, user_id: int, asset: str) -> tuple[int, int]:
        for b in await self.store.ledger.balances(user_id):
            if b.asset == asset:
                return b.available_minor, b.held_minor
        return 0, 0

    async def withdraw(self, headers: dict[str, str], key: str, **body: Any) -> Any:
        return await self.client.post("/api/v1/withdrawals", json=body, headers={**headers, "Idempotency-Key": key})


@asynccontextmanager
async def running(settings: Settings, store: Store, **overrides: Any) -> AsyncIterator[Running]:
    async with teller_and_client(settings, store, **overrides) as (teller, client):
        yield Running(teller=teller, client=client, store=store)


async def state_snapshot(store: Store) -> dict[str, Any]:
    """Everything a bad request must not change."""
    tables = {}
    for table in ("withdrawals", "withdrawal_attempts", "transfers", "accounts", "outbox", "address_nonces"):
        tables[table] = await store.fetch_all(f"SELECT * FROM {table} ORDER BY 1")
    # An account row with all-zero sums is not state (the PostgreSQL engine may create one for a refused transfer)
    tables["accounts"] = [a for a in tables["accounts"] if any(v for k, v in a.items() if k.endswith("_minor"))]
    return tables
