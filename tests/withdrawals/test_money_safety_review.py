"""Findings of the adversarial read of the withdrawal fixes themselves, kept as tests: a transaction at the
fee cap that the pool lost, a parked row that un-parked itself, an operator's refund of money that left,
and a freeze committed between the actor's read and its signature."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from teller.storage import Store
from teller.storage.freezes import Freezes
from tests.fixtures.chain import DevNet
from tests.fixtures.http import OPS_TOKEN
from tests.fixtures.lying_node import LyingNode
from tests.withdrawals.helpers import ETH, RECIPIENT, Running, running, wait_for, withdrawal_settings

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
HOT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


async def _row(store: Store, wid: str) -> dict[str, Any]:
    row = await store.fetch_one("SELECT * FROM withdrawals WHERE id = ?", int(wid))
    assert row is not None
    return row


async def _wid(app: Running, headers: dict[str, str], key: str) -> str:
    response = await app.withdraw(headers, key, chain="devnet", asset="ETH", to=RECIPIENT, amount="0.1")
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def test_a_transaction_at_the_fee_cap_is_sent_again_when_the_pool_lost_it(store: Store, devnet: DevNet) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token, replace_after_s=0.3,
                                   max_fee_per_gas_cap_wei=4 * 10**9)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        wid = await _wid(app, headers, "capped")

        async def capped() -> Any:
            row = await store.fetch_one("SELECT MAX(max_fee_per_gas_wei) AS m FROM withdrawal_attempts"
                                        " WHERE withdrawal_id = ?", int(wid))
            return row and row["m"] is not None and int(row["m"]) * 112 // 100 > 4 * 10**9
        await wait_for(capped, what="the fee cap reached")
        await asyncio.sleep(1.0)  # past replace_after_s: every tick now wants a replacement it may not make
        dev.rpc("anvil_dropAllTransactions")  # the node's pool loses it (a restart, an eviction)
        dev.set_automine(True)
        behind = await _wid(app, headers, "behind")
        for _ in range(40):  # 40 blocks: the fee cap still holds (the base fee falls ~12 % a block at most)
            dev.mine(1)
            await asyncio.sleep(0.1)
            if (await _row(store, behind))["status"] == "confirmed":
                break
        assert (await _row(store, wid))["status"] == "confirmed"   # sent again at its capped fee
        assert (await _row(store, behind))["status"] == "confirmed"  # and the nonce behind it is not stuck
        assert not await store.ledger.check_invariants()


async def test_a_parked_row_stays_parked_until_it_moves_and_its_backoff_grows(store: Store, devnet: DevNet) -> None:
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    unfunded = replace(settings, signer=replace(settings.signer, hot_wallet_index=40))  # every send rejected
    async with running(unfunded, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        wid = await _wid(app, headers, "broke")
        seen = []

        async def twice() -> bool:
            seen.append(int((await _row(store, wid))["failures"] or 0))
            return seen[-1] >= 2
        await wait_for(twice, what="a second park")
        first = seen.index(1)
        assert all(f >= 1 for f in seen[first:]), seen  # never un-parked by a send the node rejected


async def test_an_operator_cannot_refund_a_withdrawal_the_chain_shows_paid(store: Store, devnet: DevNet) -> None:
    async with LyingNode(devnet.url) as node:
        node.rules["eth_getTransactionReceipt"] = lambda params, result: None  # a lagging node: an incident
        settings = withdrawal_settings(rpc_url=node.url, token=devnet.token)
        async with running(settings, store) as app:
            uid, headers = await app.sign_in()
            await app.credit(uid, ETH, 10**18)
            wid = await _wid(app, headers, "paid")

            async def incident() -> Any:
                row = await _row(store, wid)
                return row if row["incident_reason"] else None
            await wait_for(incident, between=lambda: devnet.dev.mine(1), what="the incident")
            node.rules.clear()  # the node is honest again: the receipt (status 1) is there
            refused = await app.client.post(f"/ops/withdrawals/{wid}/resolve", headers=OPS,
                                            json={"action": "refund", "reason": "looked like it never mined"})
            # 409 either way: the node shows it paid, or the actor, asking the same node, settled it first
            assert refused.status == 409, await refused.text()

            async def confirmed() -> bool:  # and the actor settles it on its own, from the receipt
                return (await _row(store, wid))["status"] == "confirmed"
            await wait_for(confirmed, between=lambda: devnet.dev.mine(1), what="the settlement")
            assert await app.balance(uid, ETH) == (10**18 - 10**17 - 5 * 10**14, 0)
            assert not await store.ledger.check_invariants()


async def test_a_freeze_committed_after_the_actor_looked_still_stops_the_signature(
        store: Store, devnet: DevNet, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Freezes.frozen_user_assets

    async def racing(self: Freezes, chain: str) -> set[tuple[int, str]]:
        out = await real(self, chain)
        # another process (a reconciler, an incident on another Teller) freezes every chain right now
        await store.run_atomic([Freezes.freeze_write("invariants", scope="all", reason="reconcile violation")])
        return out
    monkeypatch.setattr(Freezes, "frozen_user_assets", racing)
    async with running(withdrawal_settings(rpc_url=devnet.url, token=devnet.token), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        wid = await _wid(app, headers, "f")
        nonce = devnet.dev.rpc("eth_getTransactionCount", HOT, "pending")
        for _ in range(20):
            await asyncio.sleep(0.05)
        assert (await _row(store, wid))["status"] == "pending"
        assert devnet.dev.rpc("eth_getTransactionCount", HOT, "pending") == nonce  # nothing was sent
