"""Deposit routes: the same address always (also under concurrent requests), only the caller's deposits,
bad input answered 4xx with no state change, the faucet only in dev mode."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from teller.storage.invariants import check_invariants
from tests.deposits.helpers import CHAIN, CONFIRMATIONS, chain_table, deposit_settings, running, wait_for

DEAD_RPC = "http://127.0.0.1:1"
TOKEN = "0x" + "ab" * 20


async def _snapshot(store: Any) -> dict[str, Any]:
    tables = {}
    for table in ("deposit_addresses", "deposits", "transfers", "outbox"):
        tables[table] = await store.fetch_all(f"SELECT * FROM {table} ORDER BY 1")
    return tables


async def test_concurrent_requests_give_one_address_per_user_and_distinct_ones_across_users(store, devnet) -> None:
    # A live node: a first claim needs the watcher's first checkpoint (test_lying_logs: with the node down it is a
    # 502 and nothing is claimed).
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        users = [await app.sign_in(5000 + n) for n in range(4)]
        answers = await asyncio.gather(*(app.address(headers) for _, headers in users for _ in range(5)))
        per_user = [set(answers[i * 5:(i + 1) * 5]) for i in range(4)]
        assert all(len(s) == 1 for s in per_user)
        assert len(set.union(*per_user)) == 4
        rows = await store.fetch_all("SELECT * FROM deposit_addresses ORDER BY hd_index")
        assert len(rows) == 4
        hot_index = settings.signer.hot_wallet_index
        assert all(r["hd_index"] > hot_index for r in rows)
        assert answers[0].startswith("0x") and answers[0] != answers[0].lower()  # checksummed


@pytest.mark.parametrize("body", [
    {"chain": "nope"}, {"chain": 5}, {"chain": ""}, {"chain": "x" * 10_000}, {}, {"chain": CHAIN, "extra": 1},
    [CHAIN], "devnet", None, {"chain": None},
])
async def test_bad_address_requests_are_4xx_and_change_nothing(store, body) -> None:
    settings = deposit_settings(chain_table(rpc_url=DEAD_RPC, token=TOKEN))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(5100)
        before = await _snapshot(store)
        response = await app.client.post("/api/v1/deposit-addresses", json=body, headers=headers)
        assert 400 <= response.status < 500, await response.text()
        assert (await response.json())["error"]["code"]
        if body == {"chain": "nope"}:
            assert response.status == 422 and (await response.json())["error"]["code"] == "unknown_chain"
        assert await _snapshot(store) == before


async def test_malformed_and_huge_bodies_are_4xx(store) -> None:
    settings = deposit_settings(chain_table(rpc_url=DEAD_RPC, token=TOKEN))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(5101)
        before = await _snapshot(store)
        for data in (b"{not json", b"\xff\xfe", b'{"chain": "devnet"' + b" " * 200_000 + b"}"):
            response = await app.client.post("/api/v1/deposit-addresses", data=data,
                                             headers={**headers, "Content-Type": "application/json"})
            assert 400 <= response.status < 500
        response = await app.client.post("/api/v1/deposit-addresses", json={"chain": CHAIN})
        assert response.status == 401
        for query in ("limit=0", "limit=-1", "limit=abc", "limit=100000", "cursor=-5", "cursor=1e9", "cursor=x"):
            response = await app.client.get(f"/api/v1/deposits?{query}", headers=headers)
            assert response.status == 422, query
        assert await _snapshot(store) == before


async def test_without_signer_keys_new_addresses_are_feature_disabled(store) -> None:
    settings = deposit_settings(chain_table(rpc_url=DEAD_RPC, token=TOKEN), signer=False)
    async with running(settings, store) as app:
        _, headers = await app.sign_in(5102)
        response = await app.client.post("/api/v1/deposit-addresses", json={"chain": CHAIN}, headers=headers)
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "feature_disabled"
        response = await app.client.get("/api/v1/deposits", headers=headers)
        assert response.status == 200 and (await response.json())["deposits"] == []


async def test_the_faucet_is_not_there_outside_dev_mode(store) -> None:
    settings = deposit_settings(chain_table(rpc_url=DEAD_RPC, token=TOKEN))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(5103)
        response = await app.client.post("/dev/faucet", json={"chain": CHAIN, "asset": "ETH", "amount": "1"},
                                         headers=headers)
        assert response.status == 404
        doc = await (await app.client.get("/api/v1/openapi.json")).json()
        assert "/dev/faucet" not in doc["paths"]


@pytest.mark.parametrize("body", [
    {"chain": CHAIN, "asset": "ETH", "amount": "-1"}, {"chain": CHAIN, "asset": "ETH", "amount": "0"},
    {"chain": CHAIN, "asset": "USDT", "amount": "1.0000001"}, {"chain": CHAIN, "asset": "ETH", "amount": "1e3"},
    {"chain": CHAIN, "asset": "ETH", "amount": "99999999999999999999"}, {"chain": CHAIN, "asset": "DOGE", "amount": "1"},
    {"chain": "nope", "asset": "ETH", "amount": "1"}, {"chain": CHAIN, "asset": "ETH", "amount": 1},
    {"chain": CHAIN, "asset": "ETH", "amount": "1", "address": "0x1234"},
    {"chain": CHAIN, "asset": "ETH", "amount": "1", "address": 7},
    {"chain": CHAIN, "asset": "ETH", "amount": "1", "to": "me"},
])
async def test_bad_faucet_requests_are_4xx(store, devnet, body) -> None:
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token), dev=True)
    async with running(settings, store) as app:
        _, headers = await app.sign_in(5104)
        before_block = devnet.dev.block_number()
        response = await app.client.post("/dev/faucet", json=body, headers=headers)
        assert 400 <= response.status < 500, await response.text()
        assert devnet.dev.block_number() == before_block


async def test_the_faucet_needs_a_signed_in_user(store, devnet) -> None:
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token), dev=True)
    async with running(settings, store) as app:
        body = {"chain": CHAIN, "asset": "ETH", "amount": "1"}
        for headers in ({}, {"Authorization": "Bearer forged.token.here"}, {"Authorization": "Basic abc"}):
            response = await app.client.post("/dev/faucet", json=body, headers=headers)
            assert response.status == 401


async def test_the_dev_faucet_funds_the_callers_deposit_address_and_the_deposit_lands(store, devnet) -> None:
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token), dev=True)
    async with running(settings, store) as app:
        _, headers = await app.sign_in(5105)
        _, stranger = await app.sign_in(5106)
        doc = await (await app.client.get("/api/v1/openapi.json")).json()
        assert doc["paths"]["/dev/faucet"]["post"]["tags"] == ["dev"]
        await wait_for(lambda: _has_checkpoint(store), what="the watcher's first checkpoint")
        for asset, amount in (("USDT", "25.5"), ("ETH", "0.25")):
            response = await app.client.post("/dev/faucet", json={"chain": CHAIN, "asset": asset, "amount": amount},
                                             headers=headers)
            assert response.status == 202, await response.text()
        await wait_for(lambda: _credited(app, headers, 2), between=lambda: devnet.dev.mine(CONFIRMATIONS),
                       what="the faucet's deposits credited")
        balances = await app.balances(headers)
        assert balances[f"{CHAIN}:USDT"] == "25.5" and balances[f"{CHAIN}:ETH"] == "0.25"
        listed = await app.deposits(headers)
        assert {(d["asset"], d["amount"], d["status"]) for d in listed} == {("USDT", "25.5", "credited"),
                                                                          ("ETH", "0.25", "credited")}
        assert all(d["confirmations"] >= CONFIRMATIONS for d in listed)
        assert await app.deposits(stranger) == []  # only the caller's
    assert await check_invariants(store) == []


async def _has_checkpoint(store: Any) -> bool:
    return await store.fetch_one("SELECT 1 AS one FROM chain_checkpoints") is not None


async def _credited(app: Any, headers: dict[str, str], count: int) -> bool:
    return len([d for d in await app.deposits(headers) if d["status"] == "credited"]) >= count
