"""ChainWatcher against a real anvil: deposits seen, confirmed, credited exactly once; reorgs orphan."""

from __future__ import annotations

import asyncio
from typing import Any

from teller.chain.devchain import FAUCET_ADDRESS
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

ETH_WEI = 10**18


async def _rows_with(store: Any, status: str, count: int) -> Any:
    rows = [r for r in await deposit_rows(store) if r["status"] == status]
    return rows if len(rows) >= count else None


async def test_native_and_token_deposits_are_credited_once_after_confirmations(store, devnet) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        uid, headers = await app.sign_in(1001)
        address = await app.address(headers)
        assert address == await app.address(headers)  # the same address, always
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        dev.send_native(to=address, amount_wei=2 * ETH_WEI, wait=False)
        dev.send_token(devnet.token, to=address, amount_minor=5_000_000, wait=False)
        await asyncio.to_thread(dev.mine, 1)
        pending = await wait_for(lambda: _rows_with(store, "pending", 2), what="two pending deposits")
        assert {r["asset"] for r in pending} == {"ETH", "USDT"}
        listed = await app.deposits(headers)
        assert {d["status"] for d in listed} == {"pending"}
        assert all(d["required_confirmations"] == CONFIRMATIONS for d in listed)
        # one block short of the confirmations: nothing is credited
        await asyncio.to_thread(dev.mine, CONFIRMATIONS - 2)
        tip = dev.block_number()
        await wait_for(lambda: _checkpoint_at(store, tip), what="the watcher at the tip")
        assert await transfers_for(store) == []
        assert (await app.balances(headers)).get(f"{CHAIN}:ETH", "0") == "0"
        await asyncio.to_thread(dev.mine, 1)
        await wait_for(lambda: _rows_with(store, "credited", 2), what="two credited deposits")
        await asyncio.to_thread(dev.mine, 5)
        await wait_for(lambda: _checkpoint_at(store, dev.block_number()), what="the watcher at the tip")
        assert len(await transfers_for(store)) == 2
        balances = await app.balances(headers)
        assert balances[f"{CHAIN}:ETH"] == "2"
        assert balances[f"{CHAIN}:USDT"] == "5"
        listed = await app.deposits(headers)
        assert {d["status"] for d in listed} == {"credited"}
        assert all(d["credited_at"] for d in listed)
        assert len(await events_of(store, "deposit.seen")) == 2
        assert len(await events_of(store, "deposit.credited")) == 2
    assert await check_invariants(store) == []


async def _checkpoint_at(store: Any, number: int) -> bool:
    checkpoint = await checkpoint_of(store)
    return checkpoint is not None and checkpoint >= number


async def test_two_transfer_logs_in_one_transaction_are_two_credits(store, devnet) -> None:
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(1002)
        address = await app.address(headers)
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        devnet.dev.batch_send_token(devnet.token, [(address, 1_000_000), (address, 2_000_000)])
        await asyncio.to_thread(devnet.dev.mine, CONFIRMATIONS)
        rows = await wait_for(lambda: _rows_with(store, "credited", 2), what="two credits")
        assert len({r["tx_hash"] for r in rows}) == 1 and len({r["log_index"] for r in rows}) == 2
        assert (await app.balances(headers))[f"{CHAIN}:USDT"] == "3"
        assert len(await transfers_for(store)) == 2
    assert await check_invariants(store) == []


async def test_a_transfer_from_an_unknown_sender_to_a_stranger_is_ignored(store, devnet) -> None:
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(1003)
        await app.address(headers)
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        devnet.dev.send_token(devnet.token, to="0x" + "42" * 20, amount_minor=7)
        devnet.dev.send_native(to=FAUCET_ADDRESS, amount_wei=1)
        await asyncio.to_thread(devnet.dev.mine, CONFIRMATIONS + 1)
        await wait_for(lambda: _checkpoint_at(store, devnet.dev.block_number()), what="the tip")
        assert await deposit_rows(store) == []
