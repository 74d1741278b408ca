"""Migration 5 on both backends, over a database holding deposits of the old format (credited, pending,
orphaned; a transaction with two transfers to one address) and addresses claimed without a sequence:
every row keeps its id, status and amount, gets its ordinal and the ledger key it was (or will be)
credited with, and a replay of an old credit - or the transaction re-mined at another log index - is
never a second credit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from teller.storage import Event, Store, open_store
from teller.storage.accounts import chain_account, user_account
from teller.storage.deposits import Checkpoint, Deposits, FoundDeposit
from teller.storage.ledger_keys import deposit_credit_key, legacy_deposit_credit_key
from teller.storage.schema import MIGRATIONS
from tests.fixtures.store import store_before

CHAIN = "devnet"
CODE = f"{CHAIN}:USDT"
ADDRESS = "0x" + "a1" * 20
HUGE_MINOR = 2**70 + 3          # past 64 bits: copied exactly
TX_A, TX_B, TX_C, TX_D = ("0x" + c * 64 for c in "abcd")


@pytest.fixture
async def v4_url(store_url: str) -> AsyncIterator[str]:
    """``store_url`` with a database migrated only to version 4 and filled the old way."""
    async with store_before(store_url, 5) as old:
        await _fill_the_old_way(old)
    yield store_url


async def _fill_the_old_way(store: Store) -> None:
    uid = (await store.users.get_or_create(telegram_id=9001)).id
    other = (await store.users.get_or_create(telegram_id=9002)).id
    insert = ("INSERT INTO deposits (user_id, chain, asset, address, tx_hash, log_index, amount_minor, block_number,"
              " block_hash, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    rows = [(TX_A, 3, HUGE_MINOR, 10, "credited"), (TX_B, 4, 20, 11, "pending"), (TX_B, 1, 10, 11, "pending"),
            (TX_C, -1, 5, 10, "credited"), (TX_D, 2, 7, 12, "orphaned")]
    for tx, log_index, amount, block, status in rows:
        asset = "ETH" if log_index == -1 else "USDT"
        await store.execute(insert, uid, CHAIN, asset, ADDRESS, tx, log_index, amount, block, f"0xb{block}", status)
        if status == "credited":   # credited by the old code, under the old key
            code = f"{CHAIN}:{asset}"
            await store.ledger.transfer(debit=chain_account(CHAIN, code), credit=user_account(uid, code), asset=code,
                                        amount=amount, key=legacy_deposit_credit_key(CHAIN, tx, log_index))
    # B's second transfer was credited once, but its row missed the status change (a replay must stay a no-op)
    await store.ledger.transfer(debit=chain_account(CHAIN, CODE), credit=user_account(uid, CODE), asset=CODE,
                                amount=20, key=legacy_deposit_credit_key(CHAIN, TX_B, 4))
    await store.execute("INSERT INTO chain_checkpoints (chain, block_number, block_hash) VALUES (?, 14, '0xb14')",
                        CHAIN)
    for number in range(9, 15):
        await store.execute("INSERT INTO chain_blocks (chain, block_number, block_hash, parent_hash)"
                            " VALUES (?, ?, ?, ?)", CHAIN, number, f"0xb{number}", f"0xb{number - 1}")
    # an address claimed by code that did not take a sequence yet (seq NULL), after one that did
    await store.execute("INSERT INTO deposit_addresses (user_id, chain, address, hd_index, seq) VALUES (?, ?, ?, 1, 1)",
                        uid, CHAIN, ADDRESS)
    await store.execute("INSERT INTO address_sequences (chain, seq) VALUES (?, 1)", CHAIN)
    await store.execute("INSERT INTO deposit_addresses (user_id, chain, address, hd_index) VALUES (?, ?, ?, 2)",
                        other, CHAIN, "0x" + "b2" * 20)


async def _by_log(store: Store) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["tx_hash"], int(r["log_index"])): r for r in await store.fetch_all("SELECT * FROM deposits")}


def _again(row: dict[str, Any], *, log_index: int, block: int) -> FoundDeposit:
    return FoundDeposit(user_id=int(row["user_id"]), asset=row["asset"], address=row["address"], tx_hash=row["tx_hash"],
                        ordinal=int(row["ordinal"]), log_index=log_index, amount_minor=row["amount_minor"],
                        block_number=block, block_hash=f"0xc{block}")


async def test_old_rows_keep_their_ids_statuses_amounts_and_credit_keys(v4_url: str) -> None:
    store = await open_store(v4_url)
    try:
        versions = [r["version"] for r in await store.fetch_all("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == [m.version for m in MIGRATIONS]
        rows = await _by_log(store)
        assert {key: (r["ordinal"], r["status"], r["amount_minor"]) for key, r in rows.items()} == {
            (TX_A, 3): (0, "credited", HUGE_MINOR), (TX_B, 1): (0, "pending", 10), (TX_B, 4): (1, "pending", 20),
            (TX_C, -1): (0, "credited", 5), (TX_D, 2): (0, "orphaned", 7)}
        assert all(r["credit_key"] == legacy_deposit_credit_key(CHAIN, r["tx_hash"], r["log_index"])
                   for r in rows.values())
        assert sorted(r["id"] for r in rows.values()) == [1, 2, 3, 4, 5]
        # ids go on after the copied ones (PostgreSQL: the rebuilt table's sequence was moved past them)
        repo = Deposits(store)
        new = FoundDeposit(user_id=int(rows[(TX_A, 3)]["user_id"]), asset="USDT", address=ADDRESS, tx_hash="0x" + "e" * 64,
                           ordinal=0, log_index=0, amount_minor=1, block_number=15, block_hash="0xb15")
        await repo.commit_scan(CHAIN, previous=Checkpoint(14, "0xb14"), blocks=[(15, "0xb15", "0xb14")], found=[new],
                               statuses={}, seen_events=[], window_blocks=256)
        made = await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", new.tx_hash)
        assert made["id"] == 6 and made["credit_key"] == deposit_credit_key(CHAIN, new.tx_hash, "USDT", ADDRESS, 0)
        # the address claimed without a sequence got the next one, and the chain's sequence follows
        addresses = await store.fetch_all("SELECT hd_index, seq FROM deposit_addresses ORDER BY hd_index")
        assert [(a["hd_index"], a["seq"]) for a in addresses] == [(1, 1), (2, 2)]
        assert (await store.fetch_one("SELECT seq FROM address_sequences WHERE chain = ?", CHAIN))["seq"] == 2
        assert await repo.address_seq(CHAIN) == 0
    finally:
        await store.close()


async def test_an_old_credit_is_never_made_twice_after_the_migration(v4_url: str) -> None:
    store = await open_store(v4_url)
    try:
        repo = Deposits(store)
        rows = await _by_log(store)
        # Both old pending rows credited the new way, with their stored (old) keys: B log 4's credit
        # existed already, so it is a replay; B log 1's is new.
        for key in ((TX_B, 1), (TX_B, 4)):
            row = rows[key]
            transfer = await store.ledger.transfer(
                debit=chain_account(CHAIN, CODE), credit=user_account(row["user_id"], CODE), asset=CODE,
                amount=row["amount_minor"], key=row["credit_key"], writes=repo.credit_writes(row))
            assert transfer.replayed == (key == (TX_B, 4))
            if transfer.replayed:
                await repo.mark_credited(row)
        # A reorg below block 10, and every transaction re-mined at other log indexes: the same rows.
        out = await repo.rewind(CHAIN, previous=Checkpoint(14, "0xb14"), ancestor=Checkpoint(9, "0xb9"),
                                reverse_at_block=20, orphan_event=lambda row: Event("deposit.orphaned", {}))
        assert sorted(r["tx_hash"] for r in out) == sorted([TX_A, TX_B, TX_B, TX_C])
        rows = await _by_log(store)
        found = [_again(rows[(TX_A, 3)], log_index=0, block=10), _again(rows[(TX_B, 1)], log_index=5, block=10),
                 _again(rows[(TX_B, 4)], log_index=6, block=10), _again(rows[(TX_C, -1)], log_index=-1, block=10),
                 _again(rows[(TX_D, 2)], log_index=1, block=10)]
        statuses = await repo.existing(CHAIN, [d.identity for d in found])
        assert len(statuses) == 5
        await repo.commit_scan(CHAIN, previous=Checkpoint(9, "0xb9"), blocks=[(10, "0xc10", "0xb9")], found=found,
                               statuses=statuses, seen_events=[], window_blocks=256)
        after = await store.fetch_all("SELECT * FROM deposits ORDER BY id")
        assert [(r["tx_hash"], r["log_index"], r["status"]) for r in after] == [
            (TX_A, 0, "credited"), (TX_B, 6, "credited"), (TX_B, 5, "credited"), (TX_C, -1, "credited"),
            (TX_D, 1, "pending")]
        keys = [t["key"] for t in await store.fetch_all("SELECT key FROM transfers ORDER BY id")]
        assert sorted(keys) == sorted(legacy_deposit_credit_key(CHAIN, tx, i)
                                      for tx, i in ((TX_A, 3), (TX_C, -1), (TX_B, 4), (TX_B, 1)))
        assert (await store.ledger.account(user_account(after[0]["user_id"], CODE)))["posted_credits_minor"] \
            == HUGE_MINOR + 30
        assert await store.ledger.check_invariants() == []
    finally:
        await store.close()
