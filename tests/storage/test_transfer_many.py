"""``Ledger.transfer_many``: several transfers in one call, each with its own outcome, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from teller.errors import IdempotencyConflict, InsufficientFunds
from teller.storage import Event, Transfer, chain_account, open_store, user_account
from teller.storage.ledger import TRANSFER_MANY_MAX, TransferOrder

ASSET = "ethereum:USDT"
CHAIN = chain_account("ethereum", ASSET)


def credit(user_id: int, amount: int, key: str, **extra) -> TransferOrder:
    return TransferOrder(debit=CHAIN, credit=user_account(user_id, ASSET), asset=ASSET, amount=amount, key=key, **extra)


def debit(user_id: int, amount: int, key: str) -> TransferOrder:
    return TransferOrder(debit=user_account(user_id, ASSET), credit=CHAIN, asset=ASSET, amount=amount, key=key)


async def test_each_order_gets_its_own_outcome_in_order(store) -> None:
    outcomes = await store.ledger.transfer_many([
        credit(1, 100, "c1"),
        debit(1, 60, "d1"),
        debit(1, 60, "d2"),           # only 40 left
        credit(1, 999, "c1"),         # same key, other content
        credit(1, 100, "c1"),         # a replay of the first
    ])
    assert isinstance(outcomes[0], Transfer) and not outcomes[0].replayed
    assert isinstance(outcomes[1], Transfer) and outcomes[1].amount_minor == 60
    assert isinstance(outcomes[2], InsufficientFunds)
    assert isinstance(outcomes[3], IdempotencyConflict)
    assert isinstance(outcomes[4], Transfer) and outcomes[4].replayed and outcomes[4].id == outcomes[0].id
    [balance] = await store.ledger.balances(1)
    assert balance.available_minor == 40
    assert not await store.ledger.check_invariants()


async def test_the_same_as_one_transfer_call_each(store) -> None:
    [many] = await store.ledger.transfer_many([credit(2, 5, "k", outbox=[Event("x", {"a": 1})])])
    again = await store.ledger.transfer(debit=CHAIN, credit=user_account(2, ASSET), asset=ASSET, amount=5, key="k",
                                        outbox=[Event("x", {"a": 1})])
    assert again.replayed and again.id == many.id
    assert len(await store.fetch_all("SELECT * FROM outbox WHERE type = 'x'")) == 1


async def test_a_bad_order_submits_none_of_them(store) -> None:
    with pytest.raises(TypeError):
        await store.ledger.transfer_many([credit(3, 5, "ok"), credit(3, 5.0, "bad")])  # type: ignore[arg-type]
    assert await store.ledger.get("ok") is None
    with pytest.raises(ValueError):
        await store.ledger.transfer_many([credit(3, 1, f"k{i}") for i in range(TRANSFER_MANY_MAX + 1)])
    assert await store.ledger.transfer_many([]) == []


async def test_concurrent_calls_never_overdraw(store) -> None:
    await store.ledger.transfer_many([credit(4, 10, "fund")])
    calls = [store.ledger.transfer_many([debit(4, 10, f"d{c}-{i}") for i in range(5)]) for c in range(10)]
    outcomes = [o for batch in await asyncio.gather(*calls) for o in batch]
    assert sum(isinstance(o, Transfer) for o in outcomes) == 1
    assert sum(isinstance(o, InsufficientFunds) for o in outcomes) == 49
    [balance] = await store.ledger.balances(4)
    assert balance.available_minor == 0
    assert not await store.ledger.check_invariants()


async def test_more_orders_than_a_batch_all_commit(store) -> None:
    outcomes = await store.ledger.transfer_many([credit(5, 1, f"big{i}") for i in range(TRANSFER_MANY_MAX)])
    assert all(isinstance(o, Transfer) and not o.replayed for o in outcomes)
    [balance] = await store.ledger.balances(5)
    assert balance.available_minor == TRANSFER_MANY_MAX


async def test_a_full_queue_makes_callers_wait_and_close_drains_it(store) -> None:
    from teller.storage.ledger import Ledger

    ledger = Ledger(store, batch_max=2, queue_max=4)
    singles = [ledger.transfer(debit=CHAIN, credit=user_account(6, ASSET), asset=ASSET, amount=1, key=f"s{i}")
               for i in range(40)]
    bulk = [ledger.transfer_many([credit(6, 1, f"b{c}-{i}") for i in range(3)]) for c in range(10)]
    results = await asyncio.gather(*singles, *bulk)
    assert all(isinstance(t, Transfer) for t in results[:40])
    assert all(isinstance(t, Transfer) for batch in results[40:] for t in batch)
    late = asyncio.ensure_future(ledger.transfer(debit=CHAIN, credit=user_account(6, ASSET), asset=ASSET, amount=1,
                                                 key="late"))
    await asyncio.sleep(0)
    await ledger.close()
    assert (await late).key == "late"  # submitted before close: it is finished, not dropped
    [balance] = await store.ledger.balances(6)
    assert balance.available_minor == 71


async def test_a_batch_of_only_replays_and_conflicts_writes_nothing(store) -> None:
    [first] = await store.ledger.transfer_many([credit(7, 5, "r1", outbox=[Event("y", {})])])
    again = await store.ledger.transfer_many([credit(7, 5, "r1", outbox=[Event("y", {})]), credit(7, 6, "r1")])
    assert isinstance(again[0], Transfer) and again[0].replayed and again[0] == Transfer(
        **{**{f: getattr(first, f) for f in first.__slots__}, "replayed": True})
    assert isinstance(again[1], IdempotencyConflict)
    assert len(await store.fetch_all("SELECT * FROM outbox WHERE type = 'y'")) == 1
    [balance] = await store.ledger.balances(7)
    assert balance.available_minor == 5


async def test_a_key_committed_by_another_connection_before_the_write_lock_is_a_replay(store, monkeypatch) -> None:
    """SQLite reads a batch's keys before taking the write lock; a commit in between must be seen."""
    if store.backend != "sqlite":
        pytest.skip("SQLite's read-before-lock path")
    import sqlite3

    from teller.storage import _engine_sqlite

    original = _engine_sqlite._Batch._load_keys
    calls = []

    def load_keys_then_race(self):
        rows = original(self)
        if not calls:  # another process commits the same transfer right after our first read
            calls.append(1)
            other = sqlite3.connect(store._path, isolation_level=None)
            for name, user in ((CHAIN, None), (user_account(8, ASSET), 8)):
                other.execute("INSERT OR IGNORE INTO accounts (name, asset, user_id, posted_debits_minor,"
                              " posted_credits_minor, pending_debits_minor, pending_credits_minor, created_at)"
                              " VALUES (?, ?, ?, '0', '0', '0', '0', '2026-01-01T00:00:00.000Z')", (name, ASSET, user))
            other.execute("INSERT INTO transfers (id, key, kind, debit, credit, asset, amount_minor, status, fingerprint,"
                          " credit_user_id, created_at) VALUES (777, 'raced', 'single', ?, ?, ?, '3', 'posted', ?, 8,"
                          " '2026-01-01T00:00:00.000Z')",
                          (CHAIN, user_account(8, ASSET), ASSET, f"single|{CHAIN}|{user_account(8, ASSET)}|{ASSET}|3"))
            other.close()
        return rows

    monkeypatch.setattr(_engine_sqlite._Batch, "_load_keys", load_keys_then_race)
    [outcome] = await store.ledger.transfer_many([credit(8, 3, "raced")])
    assert isinstance(outcome, Transfer) and outcome.replayed and outcome.id == 777
    assert len(await store.fetch_all("SELECT * FROM transfers WHERE key = 'raced'")) == 1


async def test_replays_from_memory_mix_with_new_transfers_and_match_the_database(store, store_url) -> None:
    """A replay of a transfer this ledger just committed is answered without the database; it
    must be the very answer the database gives another process, and keep its slot in the call."""
    first = await store.ledger.transfer_many([credit(1, 100, "m1"), credit(2, 5, "m2")])
    outcomes = await store.ledger.transfer_many([
        credit(1, 100, "m1"),          # replay, from memory
        credit(3, 7, "m3"),            # new
        credit(2, 6, "m2"),            # same key, other content
    ])
    assert outcomes[0] == Transfer(**{**_fields(first[0]), "replayed": True})
    assert isinstance(outcomes[1], Transfer) and not outcomes[1].replayed and outcomes[1].amount_minor == 7
    assert isinstance(outcomes[2], IdempotencyConflict)
    with pytest.raises(IdempotencyConflict):
        await store.ledger.transfer(debit=CHAIN, credit=user_account(2, ASSET), asset=ASSET, amount=6, key="m2")
    other = await open_store(store_url)  # another process: its answers come from the database
    try:
        from_db = await other.ledger.transfer_many([credit(1, 100, "m1"), credit(3, 7, "m3")])
    finally:
        await other.close()
    assert from_db == [outcomes[0], Transfer(**{**_fields(outcomes[1]), "replayed": True})]
    [balance] = await store.ledger.balances(1)
    assert balance.available_minor == 100
    assert not await store.ledger.check_invariants()


def _fields(transfer: Transfer) -> dict:
    return {name: getattr(transfer, name) for name in Transfer.__dataclass_fields__}
