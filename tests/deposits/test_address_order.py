"""The watcher never skips a deposit address, whatever order claims commit in, and scans an address it
takes in late from the block it was claimed at (a backfill), against a real anvil on both backends."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import pytest

from teller.storage import open_store
from teller.storage.deposits import Deposits
from teller.storage.invariants import check_invariants
from teller.storage.postgres import split_schema
from teller.storage.store import Write, utc_now
from tests.deposits.helpers import (
    CHAIN,
    CONFIRMATIONS,
    chain_table,
    checkpoint_of,
    deposit_rows,
    deposit_settings,
    running,
    transfers_for,
    wait_for,
)

HD_OFFSET = 300          # the addresses these tests hand out: test-mnemonic indexes far from everyone's
HOLD_S = 2.0             # how long the early claim is given to commit while the late one is held


async def _at_tip(store: Any, dev: Any) -> bool:
    checkpoint = await checkpoint_of(store)
    return checkpoint is not None and checkpoint >= dev.block_number()


async def _credited(store: Any, user_id: int, count: int) -> Any:
    rows = [r for r in await deposit_rows(store) if r["user_id"] == user_id and r["status"] == "credited"]
    return rows if len(rows) >= count else None


def _deriver(devnet: Any) -> Any:
    async def derive(index: int) -> str:
        return str(devnet.wallet.address(HD_OFFSET + index))
    return derive


_HOLD_TRIGGER = """
CREATE FUNCTION hold_claim() RETURNS trigger AS $$
BEGIN
    IF NEW.user_id = {user_id} THEN
        PERFORM pg_advisory_xact_lock({key});
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hold_claim AFTER INSERT ON deposit_addresses FOR EACH ROW EXECUTE FUNCTION hold_claim();
"""


async def _waiting_on(gate: asyncpg.Connection, key: int) -> bool:
    return bool(await gate.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = $1 AND NOT granted",
        key))


async def test_claims_committing_in_the_reverse_order_of_their_ids_are_both_watched(
        store, store_url, store_backend, devnet) -> None:
    if store_backend != "postgresql":
        pytest.skip("SQLite commits writers one at a time: ids are commit order there")
    dev = devnet.dev
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    key = random.randint(1, 2**31 - 1)  # the database is shared: a lock of our own
    async with running(settings, store) as app:
        late_uid, _ = await app.sign_in(2201)
        early_uid, _ = await app.sign_in(2202)
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        dsn, schema = split_schema(store_url)
        gate = await asyncpg.connect(dsn)
        other = await open_store(store_url)  # the late claim comes from another process
        try:
            await gate.execute(f'SET search_path TO "{schema}"')
            await gate.execute(_HOLD_TRIGGER.format(user_id=late_uid, key=key))
            await gate.execute("SELECT pg_advisory_lock($1)", key)
            late_task = asyncio.create_task(
                Deposits(other).claim_address(late_uid, CHAIN, derive=_deriver(devnet), reserved_index=0))
            # the late claim has its row (and id) and waits, uncommitted, on our lock
            await wait_for(lambda: _waiting_on(gate, key), what="the late claim held open")
            early_task = asyncio.create_task(
                Deposits(store).claim_address(early_uid, CHAIN, derive=_deriver(devnet), reserved_index=0))
            # Where nothing orders claims, the early one commits now, with the higher id; where claims take
            # the sequence row, it waits behind the late one. Either way the watcher makes passes meanwhile.
            await asyncio.wait({early_task}, timeout=HOLD_S)
            await asyncio.to_thread(dev.mine, 2)
            await wait_for(lambda: _at_tip(store, dev), what="watcher passes while the late claim is open")
            await gate.execute("SELECT pg_advisory_unlock($1)", key)
            late, early = await late_task, await early_task
        finally:
            await other.close()
            await gate.close()
        assert late["id"] < early["id"]
        dev.send_token(devnet.token, to=late["address"], amount_minor=4_000_000)
        dev.send_native(to=late["address"], amount_wei=10**15)
        dev.send_token(devnet.token, to=early["address"], amount_minor=1_000_000)
        await asyncio.to_thread(dev.mine, CONFIRMATIONS)
        await wait_for(lambda: _credited(store, late_uid, 2), what="the late-committing address's deposits credited")
        await wait_for(lambda: _credited(store, early_uid, 1), what="the early address's deposit credited")
        assert len(await transfers_for(store)) == 3
        claimed = await store.fetch_all("SELECT user_id, seq FROM deposit_addresses ORDER BY seq")
        assert [r["user_id"] for r in claimed] == [late_uid, early_uid]  # sequence order is commit order
    assert await check_invariants(store) == []


async def _claim_in_the_past(store: Any, *, user_id: int, address: str, index: int, claim_block: int) -> None:
    """The address row as a claim that read the checkpoint at ``claim_block`` and committed only now."""
    await store.run_atomic([
        Write("INSERT INTO address_sequences (chain, seq) VALUES (?, 0) ON CONFLICT (chain) DO NOTHING", (CHAIN,)),
        Write("UPDATE address_sequences SET seq = seq + 1 WHERE chain = ?", (CHAIN,), expect_rows=1),
        Write("INSERT INTO deposit_addresses (user_id, chain, address, hd_index, created_at, seq, claim_block)"
              " VALUES (?, ?, ?, ?, ?, (SELECT seq FROM address_sequences WHERE chain = ?), ?)",
              (user_id, CHAIN, address.lower(), index, utc_now(), CHAIN, claim_block)),
    ])


class CrashOnce:
    """Raises the first time the watcher reaches ``step`` (its supervisor restarts it from storage)."""

    def __init__(self, step: str | None) -> None:
        self.step, self.crashed = step, False

    def __call__(self, chain: str, step: str) -> None:
        if step == self.step and not self.crashed:
            self.crashed = True
            raise RuntimeError(f"injected crash at {step}")


@pytest.mark.parametrize("crash_at", [None, "backfill_scanned", "backfill_committed"])
async def test_an_address_taken_in_after_its_claim_block_is_scanned_from_there(store, devnet, crash_at) -> None:
    dev = devnet.dev
    hook = CrashOnce(crash_at)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store, deposit_crash_hook=hook) as app:
        uid, headers = await app.sign_in(2301)
        claim_block = await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        target = devnet.wallet.address(HD_OFFSET + 999)
        # funded right after the claim read the checkpoint, and again two backfill steps later
        dev.send_token(devnet.token, to=target, amount_minor=3_000_000)
        dev.send_native(to=target, amount_wei=2 * 10**15)
        await asyncio.to_thread(dev.mine, 150)
        dev.send_token(devnet.token, to=target, amount_minor=5_000_000)
        await asyncio.to_thread(dev.mine, 2)
        await wait_for(lambda: _at_tip(store, dev), what="the watcher past the deposits, without their address")
        assert await deposit_rows(store) == []
        await _claim_in_the_past(store, user_id=uid, address=target, index=HD_OFFSET + 999, claim_block=claim_block)
        await asyncio.to_thread(dev.mine, CONFIRMATIONS)
        rows = await wait_for(lambda: _credited(store, uid, 3), what="the backfilled deposits credited")
        assert sorted(r["amount_minor"] for r in rows) == [3_000_000, 5_000_000, 2 * 10**15]
        balances = await app.balances(headers)
        assert balances[f"{CHAIN}:USDT"] == "8" and balances[f"{CHAIN}:ETH"] == "0.002"
        assert len(await transfers_for(store)) == 3
        address = await store.fetch_one("SELECT * FROM deposit_addresses WHERE user_id = ?", uid)
        assert address["backfill_to_block"] is None and address["backfill_next_block"] is None
        taken_in = await store.fetch_one("SELECT address_seq FROM chain_checkpoints WHERE chain = ?", CHAIN)
        assert taken_in["address_seq"] == address["seq"]
        assert hook.crashed == (crash_at is not None)
    assert await check_invariants(store) == []
