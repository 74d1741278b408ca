"""Helpers for the deposit tests: settings on a dev chain, a running Teller, waiting for conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


from teller.config import Settings
from teller.storage import Store
from tests.fixtures.chain import TEST_MNEMONIC
from tests.fixtures.http import settings_for_tests
from tests.fixtures.teller_app import POLL_S, RunningTeller, teller_and_client, wait_for  # noqa: F401 - wait_for for the tests

CHAIN = "devnet"
CONFIRMATIONS = 3


def chain_table(*, rpc_url: str, token: str, name: str = CHAIN, chain_id: int = 31337,
                confirmations: int = CONFIRMATIONS, **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "chain_id": chain_id, "rpc_url": rpc_url, "confirmations": confirmations,
        "poll_interval_s": POLL_S, "rpc_timeout_s": 2.0,
        "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0.0005"},
        "tokens": [{"symbol": "USDT", "contract": token, "decimals": 6, "min_withdrawal": "1",
                    "withdrawal_fee": "0.5"}],
        **extra,
    }


def deposit_settings(*chains: dict[str, Any], signer: bool = True, dev: bool = False) -> Settings:
    return settings_for_tests(chains=list(chains), signer={"mnemonic": TEST_MNEMONIC if signer else ""},
                              auth={"dev": dev})


class Running(RunningTeller):

    async def address(self, headers: dict[str, str], chain: str = CHAIN) -> str:
        response = await self.client.post("/api/v1/deposit-addresses", json={"chain": chain}, headers=headers)
        assert response.status == 200, await response.text()
        return str((await response.json())["address"])

    async def deposits(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        response = await self.client.get("/api/v1/deposits", headers=headers)
        assert response.status == 200, await response.text()
        return list((await response.json())["deposits"])

    async def balances(self, headers: dict[str, str]) -> dict[str, str]:
        response = await self.client.get("/api/v1/balances", headers=headers)
        assert response.status == 200, await response.text()
        return {b["asset"] if b.get("chain") is None else f"{b['chain']}:{b['asset']}": b["available"]
                for b in (await response.json())["balances"]}

    def watcher_status(self, chain: str = CHAIN) -> Any:
        return self.teller.ctx.tree and next(
            s for s in self.service().statuses.values() if s.chain == chain)

    def service(self) -> Any:
        return next(f.services["deposits"] for f in self.teller.flows if "deposits" in f.services)


@asynccontextmanager
async def running(settings: Settings, store: Store, **overrides: Any) -> AsyncIterator[Running]:
    async with teller_and_client(settings, store, **overrides) as (teller, client):
        yield Running(teller=teller, client=client, store=store)


async def deposit_rows(store: Store) -> list[dict[str, Any]]:
    return await store.fetch_all("SELECT * FROM deposits ORDER BY id")


async def checkpoint_of(store: Store, chain: str = CHAIN) -> int | None:
    row = await store.fetch_one("SELECT block_number FROM chain_checkpoints WHERE chain = ?", chain)
    return None if row is None else int(row["block_number"])


async def transfers_for(store: Store, prefix: str = "deposit:") -> list[dict[str, Any]]:
    return await store.fetch_all("SELECT * FROM transfers WHERE key LIKE ? ORDER BY id", prefix + "%")


async def events_of(store: Store, event_type: str) -> list[dict[str, Any]]:
    return await store.fetch_all("SELECT * FROM outbox WHERE type = ? ORDER BY id", event_type)
