"""Reorgs deeper than the confirmations, against a real anvil: a credited deposit re-mined at another log
index is the same credit; one that does not come back within the reorg window is reversed, frozen, shown
to ops and resolved by an operator once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account import Account

from teller.chain.address import checksum
from teller.chain.erc20 import encode_transfer
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
from tests.fixtures.http import OPS_TOKEN

SENDER_INDEX = 7     # anvil-prefunded accounts of the test mnemonic, far from the users' indexes
FRONT_INDEX = 8      # sends the transfer that comes first in the block, so ours is at log index 1
STRANGER = "0x" + "42" * 20
AMOUNT_MINOR = 7_000_000
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


class Chain:
    """The test's hands on anvil: fund the senders, sign, send, mine, roll back."""

    def __init__(self, devnet: Any) -> None:
        self.devnet, self.dev = devnet, devnet.dev

    def fund_senders(self) -> None:
        for index in (SENDER_INDEX, FRONT_INDEX):
            self.dev.mint(self.devnet.token, to=self.devnet.wallet.address(index), amount_minor=10**12, wait=False)
        self.dev.mine(1)

    def sign(self, index: int, *, to: str, amount_minor: int, tip_gwei: int) -> str:
        account = self.devnet.wallet.account(index)
        nonce = int(self.dev.rpc("eth_getTransactionCount", account.address, "pending"), 16)
        tx = {"type": 2, "chainId": self.devnet.chain_id, "nonce": nonce, "to": checksum(self.devnet.token), "value": 0,
              "data": "0x" + encode_transfer(to, amount_minor).hex(), "gas": 120_000,
              "maxFeePerGas": 200 * 10**9, "maxPriorityFeePerGas": tip_gwei * 10**9}
        return "0x" + bytes(Account.sign_transaction(tx, account.key).raw_transaction).hex()

    def send(self, raw: str) -> str:
        return str(self.dev.rpc("eth_sendRawTransaction", raw)).lower()

    async def mine(self, blocks: int) -> None:
        await asyncio.to_thread(self.dev.mine, blocks)


async def _row(store: Any, **wanted: Any) -> Any:
    rows = [r for r in await deposit_rows(store) if all(r[k] == v for k, v in wanted.items())]
    return rows[0] if rows else None


async def _at_tip(store: Any, dev: Any) -> bool:
    checkpoint = await checkpoint_of(store)
    return checkpoint is not None and checkpoint >= dev.block_number()


async def _deposit_credited_once_then_reorged_out(app: Any, chain: Chain, store: Any, headers: dict[str, str],
                                                   *, front: bool) -> tuple[str, str, int]:
    """Fund the user's address by a token transaction (behind another one when ``front``), let it be
    credited, roll the chain back below it. Returns (raw tx, tx hash, the old tip)."""
    address = await app.address(headers)
    await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
    snapshot = chain.dev.snapshot()
    if front:
        chain.send(chain.sign(FRONT_INDEX, to=STRANGER, amount_minor=1, tip_gwei=50))
    raw = chain.sign(SENDER_INDEX, to=address, amount_minor=AMOUNT_MINOR, tip_gwei=1)
    tx_hash = chain.send(raw)
    await chain.mine(1)
    seen = await wait_for(lambda: _row(store, tx_hash=tx_hash), what="the deposit seen")
    assert seen["log_index"] == (1 if front else 0), "the setup puts our transfer where the test says"
    await chain.mine(CONFIRMATIONS)
    await wait_for(lambda: _row(store, tx_hash=tx_hash, status="credited"), what="the deposit credited")
    assert (await app.balances(headers))[f"{CHAIN}:USDT"] == "7"
    top = chain.dev.block_number()
    chain.dev.revert(snapshot)  # deeper than the confirmations: the credited block is gone
    return raw, tx_hash, top


async def test_a_token_deposit_re_mined_alone_after_a_deep_reorg_is_credited_once(store, devnet) -> None:
    chain = Chain(devnet)
    chain.dev.set_automine(False)
    await asyncio.to_thread(chain.fund_senders)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(2101)
        raw, tx_hash, top = await _deposit_credited_once_then_reorged_out(app, chain, store, headers, front=True)
        first = await _row(store, tx_hash=tx_hash)
        assert chain.send(raw) == tx_hash  # the very same transaction, alone in its new block: log index 0
        await chain.mine(top - chain.dev.block_number() + 1 + CONFIRMATIONS)
        await wait_for(lambda: _row(store, tx_hash=tx_hash, log_index=0, status="credited"),
                       what="the transfer credited at its new log index")
        await chain.mine(1)
        await wait_for(lambda: _at_tip(store, chain.dev), what="the watcher at the tip")
        assert len(await transfers_for(store)) == 1
        assert (await app.balances(headers))[f"{CHAIN}:USDT"] == "7"
        rows = await deposit_rows(store)
        assert [(r["id"], r["status"], r["log_index"]) for r in rows] == [(first["id"], "credited", 0)]
        assert rows[0]["block_hash"] != first["block_hash"] and rows[0]["reverse_at_block"] is None
        assert len(await events_of(store, "deposit.credited")) == 1
        assert await events_of(store, "deposit.reversed") == []
    assert await check_invariants(store) == []


async def test_a_credited_deposit_that_does_not_come_back_is_reversed_frozen_and_resolved_once(store, devnet) -> None:
    from teller.storage.freezes import Freezes  # here, so the other test also runs on code from before freezes

    chain = Chain(devnet)
    chain.dev.set_automine(False)
    await asyncio.to_thread(chain.fund_senders)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        uid, headers = await app.sign_in(2102)
        raw, tx_hash, top = await _deposit_credited_once_then_reorged_out(app, chain, store, headers, front=False)
        await chain.mine(top - chain.dev.block_number() + 1)  # longer than ours: the watcher sees the reorg
        waiting = await wait_for(lambda: _row(store, tx_hash=tx_hash, status="out_of_chain"),
                                 what="the credited deposit out of chain")
        assert waiting["reverse_at_block"] >= top + CONFIRMATIONS
        assert (await app.balances(headers))[f"{CHAIN}:USDT"] == "7"  # still credited while it may come back
        frozen = Freezes(store)
        assert await frozen.blocking(chain=CHAIN, user_id=uid, asset=f"{CHAIN}:USDT") is None
        await wait_for(lambda: _row(store, tx_hash=tx_hash, status="reversed_after_credit"),
                       between=lambda: chain.dev.mine(1), what="the deposit reversed after its window")
        freeze = await frozen.blocking(chain=CHAIN, user_id=uid, asset=f"{CHAIN}:USDT")
        assert freeze is not None and freeze["freeze_key"] == f"deposit:{waiting['id']}"
        assert len(await events_of(store, "deposit.reversed")) == 1
        status = await (await app.client.get("/ops/status", headers=OPS)).json()
        assert status["deposit_reversals"] == {"open": 1, "items": [{
            "deposit_id": str(waiting["id"]), "user_id": str(uid), "asset": f"{CHAIN}:USDT", "amount": "7",
            "tx_hash": tx_hash}]}

        # The transaction reappears after its window: noted for the operator, never credited again.
        assert chain.send(raw) == tx_hash
        await chain.mine(1)
        reappeared = await wait_for(lambda: _reappeared(store, tx_hash), what="the reappearance recorded")
        await chain.mine(CONFIRMATIONS + 1)
        await wait_for(lambda: _at_tip(store, chain.dev), what="the watcher at the tip")
        assert (await _row(store, tx_hash=tx_hash))["status"] == "reversed_after_credit"
        assert len(await transfers_for(store)) == 1 and len(await deposit_rows(store)) == 1

        listed = await (await app.client.get("/ops/deposits/reversals", headers=OPS)).json()
        assert [(r["id"], r["reappeared_block"], r["resolution"]) for r in listed["reversals"]] == [
            (str(waiting["id"]), reappeared["reappeared_block"], None)]
        response = await app.client.post(f"/ops/deposits/{waiting['id']}/resolve", headers=OPS,
                                         json={"action": "debit", "reason": "the funds never arrived: TKT-1"})
        assert response.status == 200, await response.text()
        assert (await response.json())["resolution"] == "debited"
        assert (await app.balances(headers)).get(f"{CHAIN}:USDT", "0") == "0"
        assert await frozen.blocking(chain=CHAIN, user_id=uid, asset=f"{CHAIN}:USDT") is None
        assert [t["key"] for t in await transfers_for(store, "deposit-reversal:")] == [
            f"deposit-reversal:{waiting['id']}"]
        again = await app.client.post(f"/ops/deposits/{waiting['id']}/resolve", headers=OPS,
                                      json={"action": "debit", "reason": "the funds never arrived: TKT-1"})
        assert again.status == 409
        status = await (await app.client.get("/ops/status", headers=OPS)).json()
        assert status["deposit_reversals"] == {"open": 0, "items": []}
    assert await check_invariants(store) == []


async def _reappeared(store: Any, tx_hash: str) -> Any:
    row = await _row(store, tx_hash=tx_hash)
    return row if row is not None and row["reappeared_block"] is not None else None


class CrashOnce:
    """Raises the first time the watcher reaches ``step`` (its supervisor restarts it from storage)."""

    def __init__(self, step: str) -> None:
        self.step, self.crashed = step, False

    def __call__(self, chain: str, step: str) -> None:
        if step == self.step and not self.crashed:
            self.crashed = True
            raise RuntimeError(f"injected crash at {step}")


@pytest.mark.parametrize("crash_at", ["rewinding", "reversing", "reversal_committed"])
async def test_a_watcher_crashed_around_a_reversal_reverses_it_once(store, devnet, crash_at) -> None:
    chain = Chain(devnet)
    chain.dev.set_automine(False)
    await asyncio.to_thread(chain.fund_senders)
    hook = CrashOnce(crash_at)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store, deposit_crash_hook=hook) as app:
        _, headers = await app.sign_in(2103)
        _, tx_hash, top = await _deposit_credited_once_then_reorged_out(app, chain, store, headers, front=False)
        row = await wait_for(lambda: _row(store, tx_hash=tx_hash, status="reversed_after_credit"),
                             between=lambda: chain.dev.mine(1), what="the deposit reversed")
        await chain.mine(2)
        await wait_for(lambda: _at_tip(store, chain.dev), what="the watcher at the tip")
        assert hook.crashed
        assert len(await events_of(store, "deposit.reversed")) == 1
        freezes = await store.fetch_all("SELECT * FROM freezes WHERE freeze_key = ?", f"deposit:{row['id']}")
        assert len(freezes) == 1 and freezes[0]["resolved_at"] is None
        assert len(await transfers_for(store)) == 1
    assert await check_invariants(store) == []
