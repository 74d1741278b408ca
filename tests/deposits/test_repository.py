"""The deposit repository on both backends: race-safe address claims (two stores = two processes),
conditional checkpoint moves, orphan and re-inclusion, the credit's guarded status change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teller.actors.deposit_scan import linked_prefix
from teller.chain.types import Block
from teller.storage import Event, open_store
from teller.storage.deposits import Checkpoint, Deposits, FoundDeposit
from teller.storage.store import StaleWrite

CHAIN = "devnet"


def _address(index: int) -> str:
    return "0x" + f"{index:040x}"


async def _derive(index: int) -> str:
    await asyncio.sleep(0)  # let the other claims interleave
    return _address(index)


async def test_concurrent_claims_from_two_processes_give_one_address_per_user(store, store_url) -> None:
    other = await open_store(store_url)
    try:
        users = [(await store.users.get_or_create(telegram_id=700 + n)).id for n in range(5)]
        repos = [Deposits(store), Deposits(other)]
        rows = await asyncio.gather(*(repos[i % 2].claim_address(uid, CHAIN, derive=_derive, reserved_index=0)
                                      for i, uid in enumerate(users * 4)))
    finally:
        await other.close()
    by_user: dict[int, set[str]] = {}
    for row in rows:
        by_user.setdefault(int(row["user_id"]), set()).add(row["address"])
    assert all(len(addresses) == 1 for addresses in by_user.values())
    stored = await store.fetch_all("SELECT * FROM deposit_addresses ORDER BY hd_index")
    assert sorted(r["hd_index"] for r in stored) == sorted(users)  # reserved index 0 + user id
    assert len({r["address"] for r in stored}) == 5


async def test_a_taken_index_falls_back_to_the_next_free_one(store) -> None:
    repo = Deposits(store)
    first = (await store.users.get_or_create(telegram_id=710)).id
    second = (await store.users.get_or_create(telegram_id=711)).id
    await repo.claim_address(first, CHAIN, derive=_derive, reserved_index=second - first)  # takes second's index
    row = await repo.claim_address(second, CHAIN, derive=_derive, reserved_index=0)
    assert row["hd_index"] == second + 1
    assert (await repo.claim_address(second, CHAIN, derive=_derive, reserved_index=0))["id"] == row["id"]


def _found(user_id: int, *, tx: str, log_index: int, block: int, block_hash: str, ordinal: int = 0) -> FoundDeposit:
    return FoundDeposit(user_id=user_id, asset="USDT", address=_address(1), tx_hash=tx, ordinal=ordinal,
                        log_index=log_index, amount_minor=5, block_number=block, block_hash=block_hash)


async def test_checkpoint_moves_only_from_the_value_read_and_reorgs_orphan_then_reinclude(store) -> None:
    repo = Deposits(store)
    uid = (await store.users.get_or_create(telegram_id=800)).id
    await repo.start_at(CHAIN, Checkpoint(10, "0xa10"), parent_hash="0xa09")
    await repo.start_at(CHAIN, Checkpoint(99, "0xzzz"), parent_hash="0x0")  # a restart keeps its own
    start = await repo.checkpoint(CHAIN)
    assert start == Checkpoint(10, "0xa10")
    dep = _found(uid, tx="0xt1", log_index=0, block=11, block_hash="0xa11")
    await repo.commit_scan(CHAIN, previous=start, blocks=[(11, "0xa11", "0xa10"), (12, "0xa12", "0xa11")],
                           found=[dep], statuses={}, seen_events=[Event("deposit.seen", {"user_id": str(uid)})],
                           window_blocks=256)
    with pytest.raises(StaleWrite):  # a second writer still holding the old checkpoint loses
        await repo.commit_scan(CHAIN, previous=start, blocks=[(11, "0xb11", "0xa10")], found=[dep], statuses={},
                               seen_events=[], window_blocks=256)
    assert await repo.checkpoint(CHAIN) == Checkpoint(12, "0xa12")
    assert len(await store.fetch_all("SELECT * FROM deposits")) == 1
    credited = await repo.rewind(CHAIN, previous=Checkpoint(12, "0xa12"), ancestor=Checkpoint(10, "0xa10"),
                                 reverse_at_block=15,
                                 orphan_event=lambda row: Event("deposit.orphaned", {"user_id": str(row["user_id"])}))
    assert credited == []
    assert [r["status"] for r in await repo.all_for_chain(CHAIN)] == ["orphaned"]
    assert await repo.window(CHAIN) == {10: "0xa10"}
    # the same transfer in the new chain: the same row, pending again in its new block
    again = _found(uid, tx="0xt1", log_index=0, block=12, block_hash="0xc12")
    statuses = await repo.existing(CHAIN, [again.identity])
    assert {key: row["status"] for key, row in statuses.items()} == {again.identity: "orphaned"}
    await repo.commit_scan(CHAIN, previous=Checkpoint(10, "0xa10"),
                           blocks=[(11, "0xc11", "0xa10"), (12, "0xc12", "0xc11")], found=[again],
                           statuses=statuses, seen_events=[], window_blocks=256)
    rows = await repo.all_for_chain(CHAIN)
    assert [(r["status"], r["block_number"], r["block_hash"]) for r in rows] == [("pending", 12, "0xc12")]
    # the credit's status change holds only for the block the credit was decided on
    stale = {**rows[0], "block_hash": "0xa11"}
    with pytest.raises(StaleWrite):
        await store.run_atomic(repo.credit_writes(stale))
    await store.run_atomic(repo.credit_writes(rows[0]))
    assert (await repo.all_for_chain(CHAIN))[0]["status"] == "credited"
    assert len(await store.fetch_all("SELECT * FROM outbox WHERE type = 'deposit.orphaned'")) == 1


def _chain(length: int, *, salt: str, genesis: str = "0xgenesis") -> list[Block]:
    blocks, parent = [], genesis
    for n in range(length):
        block_hash = f"0x{salt}{n}"
        blocks.append(Block(number=n + 1, block_hash=block_hash, parent_hash=parent, timestamp_s=0,
                            base_fee_per_gas_wei=None))
        parent = block_hash
    return blocks


@given(st.integers(0, 30), st.integers(0, 30), st.booleans())
def test_linked_prefix_stops_at_the_first_gap_or_broken_link(length: int, cut: int, gap: bool) -> None:
    blocks: list[Any] = _chain(length, salt="a")
    if cut < length:
        if gap:
            blocks[cut] = None
        else:
            blocks[cut:] = _chain(length, salt="b", genesis="0xforked")[cut:]  # another chain from the cut on
    prefix = linked_prefix("0xgenesis", blocks)
    assert len(prefix) == min(cut, length)
    assert all(b.parent_hash == (prefix[i - 1].block_hash if i else "0xgenesis") for i, b in enumerate(prefix))
