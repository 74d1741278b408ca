"""A real Teller against the simulated node: deposits credited after confirmations, withdrawals confirmed,
and what Teller booked checked against the node's own truth."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from teller.chain.erc20 import encode_transfer
from teller.storage import Store
from teller.storage.invariants import check_invariants
from tests.deposits import helpers as deposits
from tests.fixtures.teller_app import POLL_S, WAIT_S
from tests.simulation import Fault, FaultPlan, SimNode, SimRpcServer, TxStatus
from tests.withdrawals import helpers as withdrawals

TOKEN = "0x" + "5e" * 20
FAUCET = "0x" + "fa" * 20
HOT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # TEST_MNEMONIC index 0, the hot wallet
ETH_WEI = 10**18


def _node() -> SimNode:
    node = SimNode(chain_id=31337)
    node.add_token(TOKEN)
    node.fund(FAUCET, 10**24)
    node.mint(TOKEN, FAUCET, 10**15)
    node.mine(5)  # a chain with some history: the watcher starts at the head
    return node


async def _until(check: Callable[[], Awaitable[Any]], *, node: SimNode, mine: bool, what: str) -> Any:
    """Poll ``check``; between polls mine one block (in the loop: the node is not thread-safe)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if mine:
            node.mine(1)
        await asyncio.sleep(POLL_S)
    return result


async def _watched_address(app: deposits.Running, store: Store, node: SimNode,
                           telegram_id: int) -> tuple[dict[str, str], str]:
    """A signed-in user's deposit address, once the watcher has its first checkpoint."""
    _, headers = await app.sign_in(telegram_id)
    address = (await app.address(headers)).lower()

    async def watching() -> bool:
        return await deposits.checkpoint_of(store) is not None
    await _until(watching, node=node, mine=False, what="a checkpoint")
    return headers, address


async def _settled(app: withdrawals.Running, headers: dict[str, str], wid: str, node: SimNode) -> Any:
    """The withdrawal's body once confirmed or failed, mining a block between polls."""
    async def final() -> Any:
        body = await (await app.client.get(f"/api/v1/withdrawals/{wid}", headers=headers)).json()
        return body if body["status"] in ("confirmed", "failed") else None
    return await _until(final, node=node, mine=True, what=f"withdrawal {wid} settled")


async def test_deposits_on_the_simulated_node_are_credited_once_after_confirmations(store: Store) -> None:
    node = _node()
    async with SimRpcServer(node) as server:
        settings = deposits.deposit_settings(deposits.chain_table(rpc_url=server.url, token=TOKEN))
        async with deposits.running(settings, store) as app:
            headers, address = await _watched_address(app, store, node, 1001)
            native = node.submit(sender=FAUCET, to=address, value_wei=2 * ETH_WEI)
            token = node.submit(sender=FAUCET, to=TOKEN, data=encode_transfer(address, 5_000_000), gas=120_000)
            node.mine(1)

            async def pending() -> bool:
                return len([r for r in await deposits.deposit_rows(store) if r["status"] == "pending"]) == 2
            await _until(pending, node=node, mine=False, what="two pending deposits")
            assert await deposits.transfers_for(store) == []

            async def credited() -> bool:
                return len([r for r in await deposits.deposit_rows(store) if r["status"] == "credited"]) == 2
            await _until(credited, node=node, mine=True, what="two credited deposits")
            balances = await app.balances(headers)
            assert balances[f"{deposits.CHAIN}:ETH"] == "2" and balances[f"{deposits.CHAIN}:USDT"] == "5"
            # the node's truth: exactly these two transfers reached the address, both final
            truth = node.transfers(to=address, min_confirmations=deposits.CONFIRMATIONS)
            assert {(t.token, t.amount_minor, t.tx_hash) for t in truth} == {
                (None, 2 * ETH_WEI, native), (TOKEN, 5_000_000, token)}
            assert len(await deposits.transfers_for(store)) == 2
            assert not await check_invariants(store)


async def test_withdrawals_on_the_simulated_node_confirm_and_match_the_chain(store: Store) -> None:
    node = _node()
    node.fund(HOT, 100 * ETH_WEI)
    node.mint(TOKEN, HOT, 1_000 * 10**6)
    async with SimRpcServer(node) as server:
        settings = withdrawals.withdrawal_settings(rpc_url=server.url, token=TOKEN)
        async with withdrawals.running(settings, store) as app:
            uid, headers = await app.sign_in()
            await app.credit(uid, withdrawals.ETH, ETH_WEI)
            await app.credit(uid, withdrawals.USDT, 100 * 10**6)
            native = await app.withdraw(headers, "n", chain="devnet", asset="ETH", to=withdrawals.RECIPIENT,
                                        amount="0.25")
            token = await app.withdraw(headers, "t", chain="devnet", asset="USDT", to=withdrawals.RECIPIENT,
                                       amount="12.5")
            assert native.status == 202 and token.status == 202
            bodies = [await _settled(app, headers, (await r.json())["id"], node) for r in (native, token)]
            assert [b["status"] for b in bodies] == ["confirmed", "confirmed"], bodies
            assert all(node.tx_status(b["tx_hash"]) is TxStatus.SUCCEEDED for b in bodies)
            recipient = withdrawals.RECIPIENT.lower()
            assert {(t.token, t.amount_minor) for t in node.transfers(to=recipient)} == {
                (None, 25 * 10**16), (TOKEN, 12_500_000)}
            assert node.nonces_used(HOT) == list(range(node.nonce(HOT)))  # no gap in the hot wallet's nonces
            assert await app.balance(uid, withdrawals.ETH) == (ETH_WEI - 25 * 10**16 - 5 * 10**14, 0)
            assert await app.balance(uid, withdrawals.USDT) == (100 * 10**6 - 13 * 10**6, 0)
            assert not await check_invariants(store)


async def test_deposits_through_faults_and_a_reorg_match_the_canonical_chain(store: Store) -> None:
    """A lying node (429s, 502s, null receipts, empty logs, a stale head) and a reorg that drops one deposit
    and moves another: after healing, Teller has credited exactly the final transfers of the canonical chain."""
    node = _node()
    plan = FaultPlan(16, stale_lag_blocks=2)
    for fault in (Fault.HTTP_429, Fault.HTTP_5XX, Fault.NULL_RECEIPT, Fault.EMPTY_LOGS, Fault.STALE_HEAD):
        plan.enable(fault, probability=0.1)
    async with SimRpcServer(node, faults=plan) as server:
        settings = deposits.deposit_settings(deposits.chain_table(rpc_url=server.url, token=TOKEN))
        async with deposits.running(settings, store) as app:
            headers, address = await _watched_address(app, store, node, 1002)
            doomed = node.submit(sender=FAUCET, to=address, value_wei=ETH_WEI)
            moved = node.submit(sender=FAUCET, to=TOKEN, data=encode_transfer(address, 7_000_000), gas=120_000)
            node.mine(1)

            async def seen_pending() -> bool:
                return any(r["tx_hash"] == doomed for r in await deposits.deposit_rows(store))
            await _until(seen_pending, node=node, mine=False, what="the doomed deposit seen, through the faults")
            node.reorg(1, reinclude={moved: 1}, drop=[doomed], length=2)  # the faucet's nonce 0 is free again
            kept = node.submit(sender=FAUCET, to=address, value_wei=3 * ETH_WEI)
            for _ in range(deposits.CONFIRMATIONS + 3):
                node.mine(1)
                await asyncio.sleep(POLL_S)
            plan.heal()
            truth = node.transfers(to=address, min_confirmations=deposits.CONFIRMATIONS)
            assert {(t.token, t.amount_minor) for t in truth} == {(None, 3 * ETH_WEI), (TOKEN, 7_000_000)}
            assert node.tx_status(doomed) is TxStatus.UNKNOWN and node.tx_status(kept) is TxStatus.SUCCEEDED

            async def credited() -> bool:
                rows = await deposits.deposit_rows(store)
                return len([r for r in rows if r["status"] == "credited"]) >= 2
            await _until(credited, node=node, mine=True, what="the two final deposits credited")
            rows = [r for r in await deposits.deposit_rows(store) if r["status"] == "credited"]
            assert [r["status"] for r in await deposits.deposit_rows(store) if r["tx_hash"] == doomed] == ["orphaned"]
            assert sorted((r["asset"], int(r["amount_minor"]), r["tx_hash"]) for r in rows) == sorted(
                [("ETH", 3 * ETH_WEI, kept), ("USDT", 7_000_000, moved)])
            balances = await app.balances(headers)
            assert balances[f"{deposits.CHAIN}:ETH"] == "3" and balances[f"{deposits.CHAIN}:USDT"] == "7"
            assert not await check_invariants(store)
            assert sum(plan.injected.values()) > 0


async def test_a_withdrawal_whose_transaction_the_pool_drops_is_paid_once(store: Store) -> None:
    """The node accepts the withdrawal's transaction and silently loses it; after healing, Teller pays it
    exactly once, with no gap in the hot wallet's nonces."""
    node = _node()
    node.fund(HOT, 100 * ETH_WEI)
    plan = FaultPlan(16)
    plan.enable(Fault.DROP_TX)
    async with SimRpcServer(node, faults=plan) as server:
        settings = withdrawals.withdrawal_settings(rpc_url=server.url, token=TOKEN, replace_after_s=0.3)
        async with withdrawals.running(settings, store) as app:
            uid, headers = await app.sign_in()
            await app.credit(uid, withdrawals.ETH, ETH_WEI)
            response = await app.withdraw(headers, "d", chain="devnet", asset="ETH", to=withdrawals.RECIPIENT,
                                          amount="0.25")
            assert response.status == 202
            wid = (await response.json())["id"]

            async def dropped() -> bool:
                return plan.injected[Fault.DROP_TX] > 0
            await _until(dropped, node=node, mine=False, what="the transaction dropped")
            node.mine(3)
            plan.heal()
            body = await _settled(app, headers, wid, node)
            assert body["status"] == "confirmed", body
            paid = node.transfers(to=withdrawals.RECIPIENT.lower())
            assert [(t.amount_minor, t.tx_hash) for t in paid] == [(25 * 10**16, body["tx_hash"])]
            assert node.nonces_used(HOT) == list(range(node.nonce(HOT)))
            assert await app.balance(uid, withdrawals.ETH) == (ETH_WEI - 25 * 10**16 - 5 * 10**14, 0)
            assert not await check_invariants(store)
