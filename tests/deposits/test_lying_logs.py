"""Deposits through a node that lags or lies, found by the simulator (issue 16), on a real anvil behind a
loopback proxy that rewrites answers:

- a node whose log index lags its blocks answers an empty ``eth_getLogs`` for a block holding a token
  deposit. Teller trusted it, moved its checkpoint past the block, and the deposit was never credited
  (simulator seed 3). Logs are now read a second time once the block is ``confirmations`` deep;
- the watcher's first checkpoint was the head it first read, so an address claimed while the node was down
  (before any checkpoint) was never scanned below it: a deposit made meanwhile was lost (seed 14). A claim
  now first makes sure the watcher has a checkpoint (a node that cannot say its head: 502, nothing claimed).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.deposits.helpers import (
    CHAIN,
    CONFIRMATIONS,
    chain_table,
    checkpoint_of,
    deposit_rows,
    deposit_settings,
    running,
    wait_for,
)
from tests.fixtures.lying_node import LyingNode

ETH_WEI = 10**18


async def _credited(store: Any, count: int) -> Any:
    rows = [r for r in await deposit_rows(store) if r["status"] == "credited"]
    return rows if len(rows) >= count else None


async def test_a_token_deposit_is_credited_though_the_node_first_answered_empty_logs(store: Any, devnet: Any) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    async with LyingNode(devnet.url) as node:
        settings = deposit_settings(chain_table(rpc_url=node.url, token=devnet.token))
        async with running(settings, store) as app:
            _, headers = await app.sign_in(1301)
            address = await app.address(headers)
            await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
            lies = {"left": 0}

            def empty_while_lying(_params: list[Any], result: Any) -> Any:
                if lies["left"] > 0 and result:
                    lies["left"] -= 1
                    return []  # the log index lags: "no logs" for blocks that hold some
                return result

            node.rules["eth_getLogs"] = empty_while_lying
            lies["left"] = 1_000
            dev.send_token(devnet.token, to=address, amount_minor=7_000_000, wait=False)
            await asyncio.to_thread(dev.mine, 1)
            mined = dev.block_number()
            await wait_for(lambda: _checkpoint_past(store, mined), what="the checkpoint past the deposit's block")
            assert await deposit_rows(store) == []  # the lie was believed at the tip...
            lies["left"] = 0  # ...and the node catches up
            await asyncio.to_thread(dev.mine, CONFIRMATIONS + 1)
            [row] = await wait_for(lambda: _credited(store, 1), what="the deposit credited")
            assert (row["asset"], int(row["amount_minor"])) == ("USDT", 7_000_000)
            assert (await app.balances(headers))[f"{CHAIN}:USDT"] == "7"
            await asyncio.to_thread(dev.mine, CONFIRMATIONS * 2)
            await asyncio.sleep(1.0)  # further passes re-read nothing twice
            assert len(await deposit_rows(store)) == 1
    assert await store.ledger.check_invariants() == []


async def _checkpoint_past(store: Any, number: int) -> bool:
    checkpoint = await checkpoint_of(store)
    return checkpoint is not None and checkpoint >= number


async def test_an_address_is_claimed_only_once_the_watcher_knows_where_to_watch_it_from(
        store: Any, devnet: Any) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    async with LyingNode(devnet.url) as node:
        down = {"on": True}

        def refuse(_params: list[Any], result: Any) -> Any:
            if down["on"]:
                raise ConnectionResetError("the node is down")
            return result

        for method in ("eth_blockNumber", "eth_getBlockByNumber", "eth_chainId"):
            node.rules[method] = refuse
        settings = deposit_settings(chain_table(rpc_url=node.url, token=devnet.token))
        async with running(settings, store) as app:
            _, headers = await app.sign_in(1302)
            refused = await app.client.post("/api/v1/deposit-addresses", json={"chain": CHAIN}, headers=headers)
            assert refused.status == 502, await refused.text()
            assert (await refused.json())["error"]["code"] == "chain_unavailable"
            assert await store.fetch_all("SELECT id FROM deposit_addresses") == []  # nothing claimed
            down["on"] = False
            address = await app.address(headers)
            assert await checkpoint_of(store) is not None
            dev.send_native(to=address, amount_wei=ETH_WEI, wait=False)
            await asyncio.to_thread(dev.mine, CONFIRMATIONS + 1)
            [row] = await wait_for(lambda: _credited(store, 1), what="the deposit credited")
            assert row["asset"] == "ETH"
    assert await store.ledger.check_invariants() == []
