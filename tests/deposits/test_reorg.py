"""Reorgs against a real anvil: a dropped deposit is orphaned and never credited; re-included, it is
credited once."""

from __future__ import annotations

import asyncio
from typing import Any

from eth_account import Account

from teller.storage.invariants import check_invariants
from tests.deposits.helpers import (
    CHAIN,
    CONFIRMATIONS,
    chain_table,
    checkpoint_of,
    deposit_rows,
    deposit_settings,
    events_of,
    running,
    transfers_for,
    wait_for,
)

SENDER_INDEX = 7  # an anvil-prefunded account of the test mnemonic, far from the users' indexes


async def _rows_with(store: Any, status: str, count: int) -> Any:
    rows = [r for r in await deposit_rows(store) if r["status"] == status]
    return rows if len(rows) >= count else None


async def _at_tip(store: Any, dev: Any) -> bool:
    checkpoint = await checkpoint_of(store)
    return checkpoint is not None and checkpoint >= dev.block_number()


def signed_native(devnet: Any, *, to: str, amount_wei: int) -> str:
    account = devnet.wallet.account(SENDER_INDEX)
    nonce = int(devnet.dev.rpc("eth_getTransactionCount", account.address, "latest"), 16)
    tx = {"type": 2, "chainId": devnet.chain_id, "nonce": nonce, "to": to, "value": amount_wei, "gas": 21_000,
          "maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 10**9}
    return "0x" + bytes(Account.sign_transaction(tx, account.key).raw_transaction).hex()


async def test_deposits_in_reverted_blocks_are_orphaned_and_never_credited(store, devnet) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(2001)
        address = await app.address(headers)
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        snapshot = dev.snapshot()
        dev.send_native(to=address, amount_wei=10**18, wait=False)
        dev.send_token(devnet.token, to=address, amount_minor=9_000_000, wait=False)
        await asyncio.to_thread(dev.mine, 1)
        await wait_for(lambda: _rows_with(store, "pending", 2), what="two pending deposits")
        dev.revert(snapshot)
        await asyncio.to_thread(dev.mine, CONFIRMATIONS + 2)
        await wait_for(lambda: _rows_with(store, "orphaned", 2), what="two orphaned deposits")
        await asyncio.to_thread(dev.mine, CONFIRMATIONS)
        await wait_for(lambda: _at_tip(store, dev), what="the watcher at the tip")
        assert await transfers_for(store) == []
        assert {d["status"] for d in await app.deposits(headers)} == {"orphaned"}
        assert len(await events_of(store, "deposit.orphaned")) == 2
        assert await events_of(store, "deposit.credited") == []
        assert (await app.balances(headers)).get(f"{CHAIN}:USDT", "0") == "0"
    assert await check_invariants(store) == []


async def test_a_same_height_reorg_orphans_the_deposit(store, devnet) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(2002)
        address = await app.address(headers)
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        dev.send_token(devnet.token, to=address, amount_minor=4_000_000, wait=False)
        await asyncio.to_thread(dev.mine, 1)
        await wait_for(lambda: _rows_with(store, "pending", 1), what="a pending deposit")
        dev.reorg(1)  # the same height, an empty block of another hash
        await wait_for(lambda: _rows_with(store, "orphaned", 1), what="the deposit orphaned")
        await asyncio.to_thread(dev.mine, CONFIRMATIONS + 1)
        await wait_for(lambda: _at_tip(store, dev), what="the watcher at the tip")
        assert await transfers_for(store) == []
    assert await check_invariants(store) == []


async def test_the_same_transfer_re_included_after_a_reorg_is_credited_once(store, devnet) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(2003)
        address = await app.address(headers)
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        raw = signed_native(devnet, to=address, amount_wei=3 * 10**18)
        snapshot = dev.snapshot()
        tx_hash = dev.rpc("eth_sendRawTransaction", raw)
        await asyncio.to_thread(dev.mine, 1)
        first = await wait_for(lambda: _rows_with(store, "pending", 1), what="a pending deposit")
        dev.revert(snapshot)
        await asyncio.to_thread(dev.mine, 1)  # another block at that height
        await wait_for(lambda: _rows_with(store, "orphaned", 1), what="the deposit orphaned")
        assert dev.rpc("eth_sendRawTransaction", raw) == tx_hash  # the very same transaction, re-included
        await asyncio.to_thread(dev.mine, 1)
        await wait_for(lambda: _rows_with(store, "pending", 1), what="the deposit pending again")
        await asyncio.to_thread(dev.mine, CONFIRMATIONS)
        rows = await wait_for(lambda: _rows_with(store, "credited", 1), what="the deposit credited")
        await asyncio.to_thread(dev.mine, CONFIRMATIONS)
        await wait_for(lambda: _at_tip(store, dev), what="the watcher at the tip")
        assert len(await deposit_rows(store)) == 1
        assert rows[0]["id"] == first[0]["id"] and rows[0]["block_number"] == first[0]["block_number"] + 1
        assert len(await transfers_for(store)) == 1
        assert (await app.balances(headers))[f"{CHAIN}:ETH"] == "3"
        assert len(await events_of(store, "deposit.credited")) == 1
        assert len(await events_of(store, "deposit.orphaned")) == 1
    assert await check_invariants(store) == []
